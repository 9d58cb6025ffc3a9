"""Redaction rules: what they replace, what they leave alone, and that streaming is safe."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ciliumctl.sysdump.redact import (
    MARKER,
    StreamRedactor,
    is_sensitive_key,
    redact_chunks,
    redact_object,
    redact_text,
    secret_summary,
)

SECRET = "Zq8vN3kLp0Xs7Yt2"
PEM_BODY = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7\n"


def red(text: str) -> tuple[str, Counter[str]]:
    counts: Counter[str] = Counter()
    return redact_text(text, counts), counts


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        (f"password: {SECRET}", "credential-value"),
        (f"  db_password: '{SECRET}'", "credential-value"),
        (f"- apiKey: {SECRET}", "credential-value"),
        (f'{{"token": "{SECRET}", "user": "x"}}', "credential-value"),
        (f'{{\\"client_secret\\":\\"{SECRET}\\"}}', "credential-value"),
        (f"export AWS_SECRET_ACCESS_KEY={SECRET}", "credential-value"),
        (f"CILIUM_ETCD_PASSWORD={SECRET}", "credential-value"),
        (f"[db]\npasswd = {SECRET}", "credential-value"),
        (f"level=info msg=connect password={SECRET} user=admin", "credential-value"),
        (f"--api-key={SECRET} --debug", "credential-value"),
        (f"GET /x?access_token={SECRET}&a=1", "credential-value"),
        (f"Authorization: Bearer {SECRET}", "authorization-header"),
        (f"header=Authorization: Basic {SECRET}", "authorization-header"),
        (f"sent bearer {SECRET}xyz to server", "bearer-token"),
        (f"etcd: https://root:{SECRET}@etcd.example:2379", "url-credentials"),
        (f"id AKIA{SECRET.upper()[:16]} used", "aws-access-key-id"),
        (f"client secret abc8Q~{SECRET}{SECRET}x here", "azure-client-secret"),
        (f"jwt eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ{SECRET}.{SECRET}{SECRET}", "jwt"),
        (f"client-key-data: {SECRET}", "credential-value"),
        (f"    client-certificate-data: {SECRET}", "credential-value"),
    ],
)
def test_rules_replace_the_value(text: str, rule: str) -> None:
    out, counts = red(text)
    assert SECRET not in out and SECRET.upper()[:16] not in out, out
    assert MARKER in out
    assert counts[rule] >= 1, counts


def test_pem_private_key_multiline_and_inline() -> None:
    text = (
        f"ca: ok\n-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----\nafter\n"
    )
    out, counts = red(text)
    assert "MIIEv" not in out and "BKcw" not in out
    assert "-----BEGIN RSA PRIVATE KEY-----" in out and "-----END RSA PRIVATE KEY-----" in out
    assert out.endswith("after\n") and out.startswith("ca: ok\n")
    assert counts["private-key"] == 1
    gcp = json.dumps(
        {
            "type": "service_account",
            "private_key": "-----BEGIN PRIVATE KEY-----\n"
            + PEM_BODY
            + "-----END PRIVATE KEY-----\n",
            "client_email": "a@b",
        }
    )
    out, counts = red(gcp)
    assert "MIIEv" not in out and "a@b" in out
    assert counts["private-key"] + counts["credential-value"] >= 1


def test_yaml_block_scalar_under_a_credential_key() -> None:
    text = "auth:\n  password: |\n    line-one-secret\n    line-two-secret\n  user: bob\n"
    out, _ = red(text)
    assert "line-one-secret" not in out and "line-two-secret" not in out
    assert "user: bob" in out and "password: |" in out
    assert yaml.safe_load(out)["auth"]["user"] == "bob"


@pytest.mark.parametrize(
    "text",
    [
        "secretName: cilium-ca",
        "tokenFile: /var/run/secrets/token",
        "secretsNamespace:\n  name: cilium-secrets",
        "enableSecretsSync: true",
        "password: ''",
        "automountServiceAccountToken: false",
        'level=info msg="Token bucket refilled" subsys=rate',
        "ipam: kubernetes\nroutingMode: tunnel",
        "tls.secretsBackend: local",
        "https://example.com/path@v1",
    ],
)
def test_references_and_settings_are_left_alone(text: str) -> None:
    out, counts = red(text)
    assert out == text and not counts


def test_objects_are_redacted_structurally() -> None:
    values = {
        "extraConfig": {"kvstore-password": SECRET, "routing-mode": "tunnel"},
        "extraEnv": [{"name": "CILIUM_API_TOKEN", "value": SECRET}, {"name": "A", "value": "1"}],
        "etcd": {"endpoints": [f"https://u:{SECRET}@etcd:2379"]},
        "hubble": {"tls": {"enabled": True, "secretName": "hubble-tls"}},
        "auth": {"token": 12345678},
        "note": f"kubeconfig:\n  users:\n  - user:\n      token: {SECRET}\n",
    }
    counts: Counter[str] = Counter()
    out = redact_object(values, counts)
    assert SECRET not in json.dumps(out)
    assert out["extraConfig"]["routing-mode"] == "tunnel"
    assert out["extraEnv"][1] == {"name": "A", "value": "1"}
    assert out["extraEnv"][0] == {"name": "CILIUM_API_TOKEN", "value": MARKER}
    assert out["hubble"]["tls"] == {"enabled": True, "secretName": "hubble-tls"}
    assert out["auth"]["token"] == MARKER
    assert sum(counts.values()) == 5
    assert values["extraConfig"]["kvstore-password"] == SECRET  # the input is not modified


def test_secret_summary_keeps_names_and_keys_only() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "creds",
            "namespace": "kube-system",
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps({"data": SECRET}),
                "owner": "me",
            },
            "managedFields": [{"manager": "x"}],
        },
        "type": "Opaque",
        "data": {"password": "c2VjcmV0", "user": "dXNlcg=="},
        "stringData": {"extra": SECRET},
    }
    out = secret_summary(secret)
    assert SECRET not in json.dumps(out) and "c2VjcmV0" not in json.dumps(out)
    assert out["keys"] == ["extra", "password", "user"]
    assert out["metadata"]["annotations"] == {"owner": "me"}
    assert "managedFields" not in out["metadata"]


def test_is_sensitive_key() -> None:
    for key in (
        "password",
        "DB_PASSWORD",
        "apiKey",
        "api-key",
        "client_secret",
        "token",
        "aws_secret_access_key",
        "client-key-data",
        "credentials",
    ):
        assert is_sensitive_key(key), key
    for key in (
        "secretName",
        "tokenFile",
        "secretsNamespace",
        "enableSecretsSync",
        "name",
        "tokenTTL",
        "passwordPath",
    ):
        assert not is_sensitive_key(key), key


def test_streaming_across_chunk_boundaries_equals_whole_text() -> None:
    text = (
        "line one\n"
        f"level=info password={SECRET} done\n"
        "-----BEGIN EC PRIVATE KEY-----\n" + PEM_BODY + "-----END EC PRIVATE KEY-----\n"
        f"Authorization: Bearer {SECRET}\n" * 3 + "tail without newline"
    )
    whole, _ = red(text)
    data = text.encode()
    for size in (1, 3, 7, 64, 1000):
        counts: Counter[str] = Counter()
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        out = b"".join(redact_chunks(chunks, counts)).decode()
        assert out == whole, size
        assert SECRET not in out


def test_long_line_without_newline_is_bounded() -> None:
    stream = StreamRedactor(Counter(), max_line=1024)
    out = stream.feed(b"a" * 5000)
    assert len(out) == 5000 and stream.finish() == b""


def test_binary_bytes_survive_unchanged() -> None:
    data = bytes(range(256)) * 4
    assert b"".join(redact_chunks([data], Counter())) == data


_secret_text = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters="+/_-"),
    min_size=12,
    max_size=40,
)
_key = st.sampled_from(
    [
        "password",
        "PASSWORD",
        "db_passwd",
        "apiKey",
        "api-key",
        "client_secret",
        "token",
        "AWS_SECRET_ACCESS_KEY",
        "auth_token",
        "private_key",
        "credentials",
    ]
)
_form = st.sampled_from(
    [
        "{k}: {v}",
        '  {k}: "{v}"',
        "- {k}: '{v}'",
        '{{"{k}": "{v}", "other": 1}}',
        "{k}={v}",
        "export {k}={v}",
        "level=info msg=x {k}={v} subsys=y",
        "--{k}={v}",
        "url https://admin:{v}@host:443/x",
        "Authorization: Bearer {v}",
    ]
)
_filler = st.lists(st.text(alphabet="abcdefghij klmnop=:.,-", max_size=30), max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    key=_key,
    value=_secret_text,
    form=_form,
    before=_filler,
    after=_filler,
    chunk=st.integers(min_value=1, max_value=50),
)
def test_planted_secrets_never_survive(
    key: str, value: str, form: str, before: list[str], after: list[str], chunk: int
) -> None:
    assume(not (form.startswith("url") and "/" in value))  # '/' cannot appear raw in userinfo
    assume(not any(value in kept for kept in before + after))  # filler is not the secret
    line = form.format(k=key, v=value)
    text = "\n".join([*before, line, *after]) + "\n"
    data = text.encode()
    counts: Counter[str] = Counter()
    out = b"".join(
        redact_chunks([data[i : i + chunk] for i in range(0, len(data), chunk)], counts)
    ).decode()
    assert value not in out, (text, out)
    assert sum(counts.values()) >= 1
    for kept in before + after:
        assert kept in out  # filler has no trigger word: untouched


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 =:,.-_/\n\t", max_size=300))
def test_text_without_trigger_words_is_unchanged(text: str) -> None:
    triggers = (
        "pass",
        "secret",
        "token",
        "key",
        "private",
        "credential",
        "auth",
        "bearer",
        "signing",
        "encryption",
        "session",
        "eyj",
        "@",
        "akia",
        "asia",
        "abia",
        "acca",
        "certificate-data",
    )
    if any(t in text.lower() for t in triggers):
        return
    out, counts = red(text)
    assert out == text and not counts
