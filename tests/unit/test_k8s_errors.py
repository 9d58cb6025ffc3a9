"""Translation of API failures into the error hierarchy."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from ciliumctl.k8s.errors import (
    ConflictError,
    ForbiddenError,
    InvalidError,
    KubeError,
    KubeTimeoutError,
    NotFoundError,
    UnauthorizedError,
    UnreachableError,
    translate_api_error,
)


@dataclass
class FakeApiException(Exception):
    status: int
    body: str | bytes | None = None
    reason: str = ""


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (404, NotFoundError),
        (409, ConflictError),
        (403, ForbiddenError),
        (401, UnauthorizedError),
        (504, KubeTimeoutError),
        (500, KubeError),
    ],
)
def test_status_codes_map_to_classes(status: int, cls: type[KubeError]) -> None:
    err = translate_api_error(
        FakeApiException(status, json.dumps({"message": "boom"})), "get ConfigMap kube-system/x"
    )
    assert type(err) is cls
    assert "get ConfigMap kube-system/x: boom" in str(err)


def test_invalid_carries_field_causes() -> None:
    body = {
        "message": 'Deployment.apps "x" is invalid',
        "details": {
            "causes": [
                {
                    "field": "spec.replicas",
                    "message": "must be >= 0",
                    "reason": "FieldValueInvalid",
                },
                {"field": "metadata.name", "message": "bad name"},
            ]
        },
    }
    err = translate_api_error(FakeApiException(422, json.dumps(body).encode()), "create x")
    assert isinstance(err, InvalidError)
    assert [c.field for c in err.causes] == ["spec.replicas", "metadata.name"]
    assert "spec.replicas: must be >= 0" in str(err)


def test_non_json_body_is_kept_as_message() -> None:
    err = translate_api_error(FakeApiException(500, "plain text failure"), "list pods")
    assert "plain text failure" in str(err)


def test_forbidden_has_a_hint() -> None:
    err = translate_api_error(FakeApiException(403, None, reason="Forbidden"), "list secrets")
    assert err.hint and "RBAC" in err.hint


def test_unreachable_names_server() -> None:
    err = UnreachableError("https://127.0.0.1:1", "connection refused")
    assert "https://127.0.0.1:1" in str(err)
    assert err.server == "https://127.0.0.1:1"


@pytest.mark.parametrize(
    ("status_text", "code"),
    [
        (None, 0),
        ('{"status":"Success"}', 0),
        (
            '{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":'
            '[{"reason":"ExitCode","message":"42"}]}}',
            42,
        ),
        (
            '{"status":"Failure","reason":"InternalError","message":"error executing command in '
            'container: cmd wait: sh -c exit 3: exit status 3"}',
            3,
        ),
        ('{"status":"Failure","message":"container not found"}', None),
        ("not json", None),
    ],
)
def test_exec_exit_code_from_status(status_text: str | None, code: int | None) -> None:
    from ciliumctl.k8s.client import _exit_code

    assert _exit_code(status_text) == code
