"""The one wrapper around the ``kubernetes`` Python client that the rest of ciliumctl uses.

It speaks plain dicts (the objects as the API serves them), maps every failure to the
:mod:`ciliumctl.k8s.errors` hierarchy, and adds what the tool needs on top: server-side
apply with the ``ciliumctl`` field manager, paginated listing, pod logs, exec and waiting
for readiness. The ``kubernetes`` package is imported lazily so that importing this module
costs nothing until a cluster is really contacted.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ciliumctl.k8s import kubeconfig as kcfg
from ciliumctl.k8s import readiness
from ciliumctl.k8s.errors import (
    KubeconfigError,
    KubeError,
    KubeTimeoutError,
    NotFoundError,
    UnreachableError,
    translate_api_error,
)

FIELD_MANAGER = "ciliumctl"
Obj = dict[str, Any]


@dataclass(frozen=True)
class ResourceInfo:
    """How one kind is served: its plural name and whether it is namespaced."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool


@dataclass(frozen=True)
class ExecResult:
    """The outcome of a command run in a container."""

    stdout: bytes
    stderr: bytes
    exit_code: int


@dataclass(frozen=True)
class ObjectRef:
    """Identifies one object for waiting and reporting."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"

    @classmethod
    def of(cls, obj: Obj) -> ObjectRef:
        """The reference of a full object."""
        meta = obj.get("metadata") or {}
        return cls(str(obj["apiVersion"]), str(obj["kind"]), meta["name"], meta.get("namespace"))


class Client:
    """A connection to one cluster, selected by kubeconfig file(s) and context."""

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        request_timeout: float = 30.0,
        connect_timeout: float = 5.0,
    ) -> None:
        from kubernetes import client as k8s_client
        from kubernetes import config as k8s_config

        self._timeout = (connect_timeout, request_timeout)
        self._resources: dict[tuple[str, str], ResourceInfo] = {}
        self._discovery_lock = threading.Lock()
        paths = kcfg.kubeconfig_paths(kubeconfig)
        configuration = k8s_client.Configuration()
        configuration.retries = 1
        if paths:
            self.info: kcfg.KubeconfigInfo | None = kcfg.inspect(paths, context)
            self.server = self.info.server
            self.context: str | None = self.info.context
            try:
                self.api_client = k8s_config.new_client_from_config(
                    config_file=os.pathsep.join(str(p) for p in paths),
                    context=self.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            except (k8s_config.ConfigException, ValueError, OSError) as exc:
                raise KubeconfigError(
                    f"kubeconfig {self.info.paths[0]} context {self.context!r} is unusable: {exc}",
                    "fix the user or cluster entry of this context",
                ) from exc
        elif os.environ.get("KUBERNETES_SERVICE_HOST"):
            self.info = None
            self.context = None
            k8s_config.load_incluster_config(client_configuration=configuration)
            self.api_client = k8s_client.ApiClient(configuration)
            self.server = configuration.host
        else:
            raise KubeconfigError(
                "no kubeconfig found (no --kubeconfig, $KUBECONFIG or ~/.kube/config)",
                "pass --kubeconfig FILE, set KUBECONFIG, or run `cilium dev-cluster up`",
            )
        self.server = str(self.api_client.configuration.host or self.server)

    # ----------------------------------------------------------------- raw requests
    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        query: Iterable[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
        raw: bool = False,
    ) -> Any:
        """Send one request; return parsed JSON (or bytes with ``raw``), errors translated."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        headers = {"Accept": "application/json, */*", "Content-Type": content_type}
        req_timeout = self._timeout if timeout is None else (self._timeout[0], timeout)
        try:
            method_, url, hdrs, body_, post = self.api_client.param_serialize(
                method=method,
                resource_path=path,
                query_params=[(k, v) for k, v in query if v is not None],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            resp = self.api_client.call_api(
                method_,
                url,
                header_params=hdrs,
                body=body_,
                post_params=post,
                _request_timeout=req_timeout,
            )
            data = resp.read()
        except ApiException as exc:
            raise translate_api_error(exc, what) from exc
        except HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            if "timed out" in str(reason).lower():
                raise KubeTimeoutError(
                    f"{what}: the API server at {self.server} did not answer in time",
                    "retry, or check the API server's health",
                ) from exc
            raise UnreachableError(self.server, _short_reason(reason)) from exc
        if not 200 <= int(resp.status) < 300:
            raise translate_api_error(_Failure(int(resp.status), data, resp.reason), what)
        if raw:
            return data
        return json.loads(data) if data else {}

    # ----------------------------------------------------------------- discovery
    def resource(self, api_version: str, kind: str) -> ResourceInfo:
        """Discover (once per group/version) how ``kind`` is served."""
        key = (api_version, kind)
        with self._discovery_lock:
            if key in self._resources:
                return self._resources[key]
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            try:
                listing = self.request("GET", path, what=f"discover {api_version}")
            except NotFoundError as exc:
                raise NotFoundError(
                    f"the API server does not serve {api_version} (looking for kind {kind})",
                    "install the CRD or controller that provides it",
                ) from exc
            for res in listing.get("resources", []):
                if "/" in res.get("name", ""):
                    continue
                info = ResourceInfo(api_version, res["kind"], res["name"], res["namespaced"])
                self._resources.setdefault((api_version, res["kind"]), info)
            if key not in self._resources:
                raise NotFoundError(
                    f"the API server serves {api_version} but has no kind {kind}",
                    "check the apiVersion and kind",
                )
            return self._resources[key]

    def _path(
        self, api_version: str, kind: str, namespace: str | None, name: str | None = None
    ) -> str:
        info = self.resource(api_version, kind)
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        if info.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{info.plural}"
        return f"{base}/{name}" if name else base

    # ----------------------------------------------------------------- CRUD
    def server_version(self) -> Obj:
        """The API server's /version document."""
        result: Obj = self.request("GET", "/version", what="get server version")
        return result

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj:
        """Read one object; raises :class:`NotFoundError` when it is absent."""
        where = f"{namespace}/{name}" if namespace else name
        result: Obj = self.request(
            "GET", self._path(api_version, kind, namespace, name), what=f"get {kind} {where}"
        )
        return result

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        """Read one object, or ``None`` when it (or its kind) does not exist."""
        try:
            return self.get(api_version, kind, name, namespace)
        except NotFoundError:
            return None

    def iter_list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> Iterator[Obj]:
        """Yield every matching object, following ``continue`` tokens page by page."""
        path = self._path(api_version, kind, namespace)
        token: str | None = None
        while True:
            page = self.request(
                "GET",
                path,
                what=f"list {kind}" + (f" in {namespace}" if namespace else ""),
                query=[
                    ("labelSelector", label_selector),
                    ("fieldSelector", field_selector),
                    ("limit", page_size),
                    ("continue", token),
                ],
            )
            for item in page.get("items", []):
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                yield item
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return

    def list_with_version(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[builtins.list[Obj], str]:
        """Every matching object and the list's resourceVersion (where a watch starts)."""
        path = self._path(api_version, kind, namespace)
        items: builtins.list[Obj] = []
        token: str | None = None
        version = ""
        while True:
            page = self.request(
                "GET",
                path,
                what=f"list {kind}" + (f" in {namespace}" if namespace else ""),
                query=[
                    ("labelSelector", label_selector),
                    ("fieldSelector", field_selector),
                    ("limit", 500),
                    ("continue", token),
                ],
            )
            meta = page.get("metadata") or {}
            version = version or str(meta.get("resourceVersion") or "")
            for item in page.get("items", []):
                item.setdefault("apiVersion", api_version)
                item.setdefault("kind", kind)
                items.append(item)
            token = meta.get("continue")
            if not token:
                return items, version

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> builtins.list[Obj]:
        """Every matching object, all pages collected."""
        return list(
            self.iter_list(
                api_version,
                kind,
                namespace,
                label_selector=label_selector,
                field_selector=field_selector,
                page_size=page_size,
            )
        )

    def create(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Create ``obj``; raises :class:`ConflictError` when it exists."""
        ref = ObjectRef.of(obj)
        result: Obj = self.request(
            "POST",
            self._path(ref.api_version, ref.kind, ref.namespace),
            what=f"create {ref}",
            query=[("dryRun", "All" if dry_run else None), ("fieldManager", FIELD_MANAGER)],
            body=obj,
        )
        return result

    def apply(
        self,
        obj: Obj,
        *,
        field_manager: str = FIELD_MANAGER,
        force: bool = False,
        dry_run: bool = False,
        subresource: str | None = None,
    ) -> Obj:
        """Server-side apply ``obj`` as ``field_manager``; ``force`` takes conflicting fields."""
        ref = ObjectRef.of(obj)
        path = self._path(ref.api_version, ref.kind, ref.namespace, ref.name)
        if subresource:
            path += f"/{subresource}"
        result: Obj = self.request(
            "PATCH",
            path,
            what=f"apply {ref}",
            query=[
                ("fieldManager", field_manager),
                ("force", "true" if force else None),
                ("dryRun", "All" if dry_run else None),
            ],
            body=json.dumps(obj),
            content_type="application/apply-patch+yaml",
        )
        return result

    def update(self, obj: Obj) -> Obj:
        """Replace ``obj`` (PUT, the ``update`` verb); its ``metadata.resourceVersion``
        makes the write conditional: :class:`ConflictError` when someone wrote first."""
        ref = ObjectRef.of(obj)
        result: Obj = self.request(
            "PUT",
            self._path(ref.api_version, ref.kind, ref.namespace, ref.name),
            what=f"update {ref}",
            query=[("fieldManager", FIELD_MANAGER)],
            body=obj,
        )
        return result

    def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: str = "merge",
    ) -> Obj:
        """Patch with a JSON merge patch (``merge``), ``strategic`` or ``json`` patch."""
        content_types = {
            "merge": "application/merge-patch+json",
            "strategic": "application/strategic-merge-patch+json",
            "json": "application/json-patch+json",
        }
        ref = ObjectRef(api_version, kind, name, namespace)
        result: Obj = self.request(
            "PATCH",
            self._path(api_version, kind, namespace, name),
            what=f"patch {ref}",
            query=[("fieldManager", FIELD_MANAGER)],
            body=patch,
            content_type=content_types[patch_type],
        )
        return result

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str = "Background",
        ignore_not_found: bool = True,
    ) -> bool:
        """Delete one object; returns False when it was already gone."""
        ref = ObjectRef(api_version, kind, name, namespace)
        try:
            self.request(
                "DELETE",
                self._path(api_version, kind, namespace, name),
                what=f"delete {ref}",
                body={"propagationPolicy": propagation},
            )
        except NotFoundError:
            if ignore_not_found:
                return False
            raise
        return True

    # ----------------------------------------------------------------- pods
    def pod_logs(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        *,
        since_time: datetime | None = None,
        limit_bytes: int | None = None,
        previous: bool = False,
        timestamps: bool = False,
        timeout: float | None = None,
    ) -> bytes:
        """A container's log; ``previous`` reads the last terminated instance."""
        since = None
        if since_time is not None:
            since = since_time.astimezone().isoformat().replace("+00:00", "Z")
        data: bytes = self.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
            what=f"logs of pod {namespace}/{pod}"
            + (f" container {container}" if container else ""),
            query=[
                ("container", container),
                ("sinceTime", since),
                ("limitBytes", limit_bytes),
                ("previous", "true" if previous else None),
                ("timestamps", "true" if timestamps else None),
            ],
            timeout=timeout,
            raw=True,
        )
        return data

    def exec(
        self,
        namespace: str,
        pod: str,
        command: builtins.list[str],
        container: str | None = None,
        *,
        stdin: bytes | None = None,
        timeout: float = 60.0,
    ) -> ExecResult:
        """Run ``command`` in a container and collect stdout, stderr and the exit code."""
        from kubernetes.client import ApiClient, CoreV1Api
        from kubernetes.client.exceptions import ApiException
        from kubernetes.stream import stream
        from kubernetes.stream.ws_client import ERROR_CHANNEL

        what = f"exec in pod {namespace}/{pod}" + (f" container {container}" if container else "")
        # kubernetes.stream swaps the ApiClient's request method while it connects, which
        # would leak into concurrent requests on the shared client: use a private one.
        api = CoreV1Api(ApiClient(self.api_client.configuration))
        kwargs: dict[str, Any] = {
            "command": command,
            "stdin": stdin is not None,
            "stdout": True,
            "stderr": True,
            "tty": False,
            "_preload_content": False,
        }
        if container:
            kwargs["container"] = container
        try:
            ws = stream(api.connect_get_namespaced_pod_exec, pod, namespace, **kwargs)
        except ApiException as exc:
            raise translate_api_error(exc, what) from exc
        except Exception as exc:  # websocket handshake failures carry no HTTP status
            status = getattr(exc, "status", None) or getattr(exc, "status_code", None)
            if status:
                raise translate_api_error(_Failure(int(status), b"", str(exc)), what) from exc
            raise KubeError(f"{what}: {exc}") from exc
        out, err = bytearray(), bytearray()
        deadline = time.monotonic() + timeout
        try:
            if stdin is not None:
                ws.write_stdin(stdin.decode("utf-8", "replace"))
            while ws.is_open():
                if time.monotonic() > deadline:
                    raise KubeTimeoutError(f"{what}: command did not finish within {timeout}s")
                ws.update(timeout=1)
                if ws.peek_stdout():
                    out += ws.read_stdout().encode()
                if ws.peek_stderr():
                    err += ws.read_stderr().encode()
            out += ws.read_stdout().encode() if ws.peek_stdout() else b""
            err += ws.read_stderr().encode() if ws.peek_stderr() else b""
            status_text = ws.read_channel(ERROR_CHANNEL)
        finally:
            ws.close()
        code = _exit_code(status_text)
        if code is None:
            raise KubeError(f"{what}: {_status_message(status_text)}")
        return ExecResult(bytes(out), bytes(err), code)

    def open_websocket(
        self, resource_path: str, query: builtins.list[tuple[str, Any]], what: str
    ) -> Any:
        """A websocket to ``resource_path`` (pod exec, port-forward) with this client's
        credentials; a refused handshake becomes the matching :class:`KubeError`."""
        from kubernetes.stream import ws_client

        _, url, headers, _, _ = self.api_client.param_serialize(
            method="GET",
            resource_path=resource_path,
            query_params=query,
            header_params={},
            auth_settings=["BearerToken"],
        )
        headers = {k.lower(): v for k, v in headers.items()}
        try:
            return ws_client.create_websocket(
                self.api_client.configuration, ws_client.get_websocket_url(url), headers
            )
        except Exception as exc:  # handshake refused (HTTP status) or connection failures
            status = getattr(exc, "status_code", None) or getattr(exc, "status", None)
            if status:
                body = getattr(exc, "resp_body", None) or b""
                raise translate_api_error(
                    _Failure(int(status), body if isinstance(body, bytes) else b"", str(exc)),
                    what,
                ) from exc
            raise KubeError(f"{what}: {exc}") from exc

    def exec_stream(
        self,
        namespace: str,
        pod: str,
        command: builtins.list[str],
        container: str | None = None,
        *,
        on_stdout: Callable[[bytes], None],
        timeout: float = 60.0,
        stderr_limit: int = 1 << 16,
    ) -> ExecResult:
        """Run ``command`` in a container, handing stdout to ``on_stdout`` chunk by chunk.

        For output too large to hold (files copied out of a pod with ``cat``). Safe to call
        from many threads at once: it opens its own websocket instead of going through
        ``kubernetes.stream.stream``, which swaps ``call_api`` on the shared ApiClient.
        The result's ``stdout`` is empty; ``stderr`` keeps its first ``stderr_limit`` bytes.
        Raises :class:`KubeError` when the command cannot run (no pod, exec refused...).
        """
        what = f"exec in pod {namespace}/{pod}" + (f" container {container}" if container else "")
        query: builtins.list[tuple[str, Any]] = [("command", c) for c in command]
        query += [("stdout", "true"), ("stderr", "true"), ("tty", "false")]
        if container:
            query.append(("container", container))
        sock = self.open_websocket(f"/api/v1/namespaces/{namespace}/pods/{pod}/exec", query, what)
        deadline = time.monotonic() + timeout
        try:
            sock.settimeout(1.0)
            err, status_bytes = pump_exec_frames(
                _websocket_frames(sock, deadline, what), on_stdout, stderr_limit=stderr_limit
            )
        finally:
            sock.close()
        status_text = status_bytes.decode("utf-8", "replace") if status_bytes else None
        code = _exit_code(status_text)
        if code is None:
            raise KubeError(f"{what}: {_status_message(status_text)}")
        return ExecResult(b"", err, code)

    def stream_pod_logs(
        self,
        namespace: str,
        pod: str,
        container: str | None = None,
        *,
        since_time: datetime | None = None,
        limit_bytes: int | None = None,
        previous: bool = False,
        timestamps: bool = False,
        timeout: float | None = None,
        chunk_size: int = 1 << 16,
    ) -> Iterator[bytes]:
        """A container's log as a stream of chunks, never held whole in memory.

        Errors (no such pod or container, no previous instance) are raised, translated, by
        the first ``next()``.
        """
        since = None
        if since_time is not None:
            since = since_time.astimezone().isoformat().replace("+00:00", "Z")
        what = f"logs of pod {namespace}/{pod}" + (f" container {container}" if container else "")
        req_timeout = self._timeout if timeout is None else (self._timeout[0], timeout)
        query = (
            ("container", container),
            ("sinceTime", since),
            ("limitBytes", limit_bytes),
            ("previous", "true" if previous else None),
            ("timestamps", "true" if timestamps else None),
        )
        path = f"/api/v1/namespaces/{namespace}/pods/{pod}/log"
        yield from self._stream(path, query, "*/*", what, req_timeout, chunk_size)

    def _stream(
        self,
        path: str,
        query: Iterable[tuple[str, Any]],
        accept: str,
        what: str,
        req_timeout: Any,
        chunk_size: int = 1 << 16,
    ) -> Iterator[bytes]:
        """GET ``path`` as a stream of chunks (logs, watches); errors translated, raised by
        the first ``next()``; the connection goes back to the pool when the stream ends."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            method_, url, hdrs, body_, post = self.api_client.param_serialize(
                method="GET",
                resource_path=path,
                query_params=[(k, v) for k, v in query if v is not None],
                header_params={"Accept": accept},
                auth_settings=["BearerToken"],
            )
            resp = self.api_client.call_api(
                method_,
                url,
                header_params=hdrs,
                body=body_,
                post_params=post,
                _request_timeout=req_timeout,
            )
        except ApiException as exc:
            raise translate_api_error(exc, what) from exc
        except HTTPError as exc:
            raise UnreachableError(self.server, _short_reason(getattr(exc, "reason", exc))) from exc
        raw = resp.response
        try:
            if not 200 <= int(resp.status) < 300:
                raise translate_api_error(_Failure(int(resp.status), raw.read(), resp.reason), what)
            try:
                for chunk in raw.stream(chunk_size, decode_content=True):
                    if chunk:
                        yield chunk
            except HTTPError as exc:
                raise KubeError(f"{what}: the stream broke: {_short_reason(exc)}") from exc
        finally:
            raw.release_conn()

    # ----------------------------------------------------------------- watch
    def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str,
        timeout_seconds: int = 300,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Iterator[Obj]:
        """Watch events (``{"type", "object"}``) after ``resource_version``, as they arrive.

        Ends when the server closes the watch (after ``timeout_seconds``); an expired
        resource version arrives as an ``ERROR`` event with code 410, as the API sends it.
        """
        what = f"watch {kind}" + (f" in {namespace}" if namespace else "")
        query = (
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", timeout_seconds),
            ("labelSelector", label_selector),
            ("fieldSelector", field_selector),
        )
        path = self._path(api_version, kind, namespace)
        req_timeout = (self._timeout[0], timeout_seconds + 30)
        pending = b""
        for chunk in self._stream(path, query, "application/json", what, req_timeout):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line.strip():
                    event: Obj = json.loads(line)
                    obj = event.get("object")
                    if isinstance(obj, dict) and event.get("type") != "ERROR":
                        obj.setdefault("apiVersion", api_version)
                        obj.setdefault("kind", kind)
                    yield event

    # ----------------------------------------------------------------- readiness
    def status_of(self, ref: ObjectRef) -> readiness.Result:
        """The kstatus status of one object (NotFound when absent)."""
        return readiness.compute(
            self.get_or_none(ref.api_version, ref.kind, ref.name, ref.namespace)
        )

    def wait_ready(
        self,
        refs: builtins.list[ObjectRef],
        *,
        timeout: float,
        interval: float = 1.0,
        fail_fast: bool = True,
    ) -> dict[ObjectRef, readiness.Result]:
        """Poll until every object is Current; raise on timeout or (``fail_fast``) Failed."""
        deadline = time.monotonic() + timeout
        while True:
            results = {ref: self.status_of(ref) for ref in refs}
            if all(r.ready for r in results.values()):
                return results
            failed = [
                f"{ref}: {r.message}"
                for ref, r in results.items()
                if r.status is readiness.Status.FAILED
            ]
            if fail_fast and failed:
                raise KubeError("; ".join(failed), "inspect the failing objects' events and logs")
            if time.monotonic() >= deadline:
                pending = [
                    f"{ref}: {r.status} ({r.message})" for ref, r in results.items() if not r.ready
                ]
                raise KubeTimeoutError(
                    f"not ready after {timeout:.0f}s: " + "; ".join(pending),
                    "raise the timeout or inspect the pending objects",
                )
            time.sleep(interval)


@dataclass(frozen=True)
class _Failure:
    """A non-2xx response in the shape :func:`translate_api_error` reads."""

    status: int
    body: bytes
    reason: str | None


def _exit_code(status_text: str | None) -> int | None:
    """Exit code from the exec error channel's Status document.

    ``None`` means the command never ran (no such container, exec refused, ...).
    """
    if not status_text:
        return 0
    try:
        status = json.loads(status_text)
    except ValueError:
        return None
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", 1))
            except ValueError:
                return 1
    # Runtimes that report the exit as an internal error (kwok does) name it in the message.
    match = re.search(r"exit (?:status|code) (\d+)", str(status.get("message", "")))
    return int(match.group(1)) if match else None


def _status_message(status_text: str | None) -> str:
    try:
        return str(json.loads(status_text or "{}").get("message") or status_text)
    except ValueError:
        return str(status_text)


def _short_reason(reason: object) -> str:
    text = str(reason)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "No route to host",
        "timed out",
        "certificate verify failed",
    ):
        if marker.lower() in text.lower():
            return marker.lower() if marker != "Connection refused" else "connection refused"
    return text.split(":")[-1].strip() or text


#: Exec channels of the Kubernetes streaming protocol (v4/v5.channel.k8s.io).
_STDOUT, _STDERR, _ERROR, _CLOSE = 1, 2, 3, 255
_OPCODE_CLOSE = 0x8


def pump_exec_frames(
    frames: Iterable[tuple[int, bytes]],
    on_stdout: Callable[[bytes], None],
    *,
    stderr_limit: int = 1 << 16,
) -> tuple[bytes, bytes]:
    """Demultiplex exec websocket frames ``(opcode, data)``: stdout goes to ``on_stdout`` as it
    arrives, stderr is kept up to ``stderr_limit`` bytes. Returns ``(stderr, status)`` where
    ``status`` is the error channel's Status document (empty when the server sent none)."""
    err, status = bytearray(), bytearray()
    for opcode, data in frames:
        if opcode == _OPCODE_CLOSE:
            break
        if not data:
            continue
        channel, payload = data[0], data[1:]
        if channel == _STDOUT and payload:
            on_stdout(bytes(payload))
        elif channel == _STDERR:
            room = stderr_limit - len(err)
            if room > 0:
                err += payload[:room]
        elif channel == _ERROR:
            status += payload
    return bytes(err), bytes(status)


def _websocket_frames(sock: Any, deadline: float, what: str) -> Iterator[tuple[int, bytes]]:
    """Frames from a connected websocket until it closes, bounded by ``deadline``."""
    from websocket import WebSocketConnectionClosedException, WebSocketTimeoutException

    while True:
        if time.monotonic() > deadline:
            raise KubeTimeoutError(f"{what}: command did not finish in time")
        try:
            opcode, frame = sock.recv_data_frame(True)
        except WebSocketTimeoutException:
            continue
        except (WebSocketConnectionClosedException, ConnectionError, OSError):
            return
        data = frame.data if frame is not None else b""
        yield opcode, data if isinstance(data, bytes) else str(data).encode()
        if opcode == _OPCODE_CLOSE:
            return
