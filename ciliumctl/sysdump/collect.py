"""`cilium sysdump`: collect the cluster's and Cilium's state into one zip archive.

The collector lists the nodes (the large-cluster guard may pause here), takes an inventory
(the Cilium components' pods, the CRDs), plans the tasks (:mod:`ciliumctl.sysdump.plan`) and
runs them on a pool of workers. Each task streams what it fetches through the redaction
rules into a spool and then into the zip, so memory stays bounded whatever the log volume.
A failing task is recorded, never fatal. At the end (also after Ctrl-C) the archive gets
``sysdump.log`` (every task, its duration and outcome), ``redactions.json`` (counts per
entry, never values), ``summary.json`` and ``index.md``, and is closed: always a valid zip.
"""

from __future__ import annotations

import builtins
import json
import re
import signal
import tarfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol

from ciliumctl import yamlio
from ciliumctl.errors import CiliumctlError
from ciliumctl.k8s.client import ExecResult
from ciliumctl.sysdump import demux, redact
from ciliumctl.sysdump.archive import (
    ArchiveClosed,
    ArchiveError,
    ArchiveWriter,
    check_entry_name,
    spool,
)
from ciliumctl.sysdump.plan import (
    BUGTOOL_COMMAND,
    COMPONENT_SELECTORS,
    Inventory,
    Options,
    PodRef,
    TaskSpec,
    large_cluster,
    plan,
    select_nodes,
)

_BUGTOOL_PATH = re.compile(r"GZIP at (\S+)")
#: A bugtool archive unpacks to at most this much (a guard against decompression bombs).
BUGTOOL_MAX_UNPACKED = 4 << 30
_CHUNK = 1 << 16


class SysdumpError(CiliumctlError):
    """Nothing could be collected (cluster unreachable, no nodes, archive not writable)."""


class SysdumpClient(Protocol):
    """The cluster calls a sysdump makes (:class:`ciliumctl.k8s.Client` provides them)."""

    def server_version(self) -> dict[str, Any]: ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...

    def iter_list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
    ) -> Iterator[dict[str, Any]]: ...

    def get_or_none(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None: ...

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
    ) -> Iterator[bytes]: ...

    def exec_stream(
        self,
        namespace: str,
        pod: str,
        command: builtins.list[str],
        container: str | None = None,
        *,
        on_stdout: Callable[[bytes], None],
        timeout: float = 60.0,
    ) -> ExecResult: ...


@dataclass
class TaskResult:
    """How one task went."""

    name: str
    action: str
    outcome: str  # "ok", "failed", "skipped"
    started: float  # seconds after the sysdump started
    duration: float
    bytes: int = 0
    entries: list[str] = field(default_factory=list)
    error: str = ""


@dataclass
class ProgressInfo:
    """Reported after each task."""

    done: int
    total: int
    bytes: int
    last: str


@dataclass
class SysdumpResult:
    """The archive written and what went into it."""

    path: Path
    entries: int
    bytes: int
    results: list[TaskResult]
    warnings: list[str]
    interrupted: bool
    summary: dict[str, Any]

    @property
    def failed(self) -> list[TaskResult]:
        """Tasks that failed."""
        return [r for r in self.results if r.outcome == "failed"]

    @property
    def collected_nothing(self) -> bool:
        """No task succeeded: the archive has only the log and summary."""
        return not any(r.outcome == "ok" for r in self.results)


class _TaskFailed(Exception):
    """A task's expected failure (non-zero exit, missing object): recorded, not raised."""


class _TaskSkipped(Exception):
    """Nothing to collect (no previous log, component not installed)."""


class Collector:
    """One sysdump run. Domain code: reports through callbacks, never prints."""

    def __init__(
        self,
        client: SysdumpClient,
        options: Options,
        *,
        version: str = "",
        now: datetime | None = None,
        on_progress: Callable[[ProgressInfo], None] | None = None,
        on_warning: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.options = options
        self.version = version
        self.now = now or datetime.now(UTC)
        self.ts = self.now.astimezone().strftime("%Y%m%d-%H%M%S")
        self._on_progress = on_progress
        self._on_warning = on_warning
        self._sleep = sleep
        self._lock = threading.Lock()
        self._results: list[TaskResult] = []
        self._redactions: dict[str, Counter[str]] = {}
        self._exec_broken: dict[str, str] = {}
        self._facts: dict[str, Any] = {}
        self._t0 = time.monotonic()
        self.warnings: list[str] = []
        self.archive: ArchiveWriter | None = None
        self._total = 0

    # ------------------------------------------------------------------ the run
    def output_path(self) -> Path:
        """The zip's path: ``--output-filename`` with ``<ts>`` replaced, ``.zip`` added."""
        name = self.options.output_filename.replace("<ts>", self.ts)
        path = Path(name)
        return path if path.suffix == ".zip" else path.with_name(path.name + ".zip")

    def run(self) -> SysdumpResult:
        """Collect everything; on Ctrl-C finalize what was collected and report it."""
        from ciliumctl.k8s.errors import KubeError

        try:
            nodes = self.client.list("v1", "Node")
        except KubeError as exc:
            raise SysdumpError(f"cannot list the cluster's nodes: {exc.message}", exc.hint) from exc
        if not nodes:
            raise SysdumpError("the cluster has no nodes: nothing to collect")
        self._facts["nodes_total"] = len(nodes)
        if large_cluster(len(nodes), self.options):
            self._warn(
                f"large cluster: {len(nodes)} nodes (threshold {self.options.large_cluster_nodes})"
                " and no --node-list, --logs-since-time or --logs-limit-bytes; the sysdump may"
                f" be large. Waiting {self.options.large_cluster_wait:.0f}s: press Ctrl-C to"
                " abort and limit it"
            )
            self._sleep(self.options.large_cluster_wait)
        selection = select_nodes(nodes, self.options.node_list)
        if selection.unmatched:
            self._warn(
                "--node-list: no node has the name or address " + ", ".join(selection.unmatched)
            )
        self._facts["nodes_selected"] = selection.names
        inventory = self._inventory(nodes)
        tasks = plan(inventory, self.options)
        self._total = sum(t.weight for t in tasks)
        path = self.output_path()
        root = path.name[: -len(".zip")]
        try:
            root = check_entry_name(root)
        except ArchiveError as exc:
            raise SysdumpError(exc.message, "use a plain file name for --output-filename") from exc
        self.archive = ArchiveWriter(path, root)
        interrupted = False
        pool = None
        try:
            from ciliumctl.sysdump.pool import WorkerPool

            pool = WorkerPool(self.options.worker_count)
            for task in tasks:
                pool.submit(lambda t=task: self._run_task(t))  # type: ignore[misc]
            while not pool.wait(0.2):
                pass
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if pool is not None:
                pool.stop()
            summary = self._finalize(interrupted)
        return SysdumpResult(
            path,
            len(self.archive.entries),
            self.archive.bytes_written,
            list(self._results),
            list(self.warnings),
            interrupted,
            summary,
        )

    # ------------------------------------------------------------------ inventory
    def _inventory(self, nodes: list[dict[str, Any]]) -> Inventory:
        from ciliumctl.k8s.errors import KubeError

        inventory = Inventory(nodes)
        ns = self.options.namespace
        for component, selector in COMPONENT_SELECTORS.items():
            started = time.monotonic()
            try:
                pods = self.client.list("v1", "Pod", ns, label_selector=selector)
            except KubeError as exc:
                self._record(
                    TaskResult(
                        f"find {component} pods",
                        "inventory",
                        "failed",
                        started - self._t0,
                        time.monotonic() - started,
                        error=exc.message,
                    )
                )
                continue
            inventory.pods[component] = [PodRef.of(p, component) for p in pods]
        started = time.monotonic()
        try:
            inventory.crds = self.client.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        except KubeError as exc:
            self._record(
                TaskResult(
                    "find CRDs",
                    "inventory",
                    "failed",
                    started - self._t0,
                    time.monotonic() - started,
                    error=exc.message,
                )
            )
        agents = inventory.pods.get("cilium", [])
        self._facts["agents"] = len(agents)
        self._facts["agents_unready"] = sorted(p.name for p in agents if not p.ready)
        return inventory

    # ------------------------------------------------------------------ tasks
    def _run_task(self, task: TaskSpec) -> None:
        from ciliumctl.k8s.errors import KubeError

        started = time.monotonic()
        result = TaskResult(task.name, task.action, "ok", started - self._t0, 0.0)
        try:
            handler = getattr(self, "_do_" + task.action.replace("-", "_"))
            several = handler(task, result)
            if several is not None:  # a batch reports one result per command
                for sub in several:
                    self._record(sub)
                return
        except ArchiveClosed:
            return  # interrupted: the archive was finalized under this task
        except _TaskSkipped as exc:
            result.outcome, result.error = "skipped", str(exc)
        except _TaskFailed as exc:
            result.outcome, result.error = "failed", str(exc)
        except KubeError as exc:
            result.outcome, result.error = "failed", exc.message
        except (OSError, ValueError, tarfile.TarError, ArchiveError) as exc:
            result.outcome, result.error = "failed", f"{exc.__class__.__name__}: {exc}"
        except Exception as exc:  # a bug in one task must not lose the others' work
            result.outcome, result.error = "failed", f"unexpected {exc.__class__.__name__}: {exc}"
        result.duration = time.monotonic() - started
        self._record(result)

    def _record(self, result: TaskResult) -> None:
        with self._lock:
            self._results.append(result)
            done = sum(1 for r in self._results if r.action != "inventory")
        if self._on_progress is not None and result.action != "inventory":
            written = self.archive.bytes_written if self.archive else 0
            self._on_progress(ProgressInfo(done, self._total, written, result.name))

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        if self._on_warning is not None:
            self._on_warning(message)

    def _entry(self, name: str) -> str:
        return name.replace("<ts>", self.ts)

    def _counts(self, entry: str) -> Counter[str]:
        with self._lock:
            return self._redactions.setdefault(entry, Counter())

    def _put_bytes(self, result: TaskResult, name: str, data: bytes) -> None:
        assert self.archive is not None
        entry = self.archive.unique(self._entry(name))
        result.bytes += self.archive.add_bytes(entry, data)
        result.entries.append(entry)

    def _put_text(self, result: TaskResult, name: str, text: str) -> None:
        entry = self._entry(name)
        if self.options.redact:
            text = redact.redact_text(text, self._counts(entry))
        self._put_bytes(result, name, text.encode())

    def _put_stream(
        self, result: TaskResult, name: str, chunks: Iterable[bytes], *, text: bool = True
    ) -> int:
        """Spool ``chunks`` (through the text rules when ``text``) and add them as one entry.

        Returns the bytes added; nothing is added for an empty stream.
        """
        assert self.archive is not None
        entry = self.archive.unique(self._entry(name))
        if self.options.redact and text:
            chunks = redact.redact_chunks(chunks, self._counts(entry))
        with spool() as buf:
            for chunk in chunks:
                buf.write(chunk)
            if buf.tell() == 0:
                return 0
            size = self.archive.add_file(entry, buf)
        result.bytes += size
        result.entries.append(entry)
        return size

    def _yaml_objects(self, name: str, objects: Iterable[dict[str, Any]]) -> Iterator[bytes]:
        """A ``kind: List`` document written one item at a time (events can be many)."""
        counts = self._counts(self._entry(name))
        yield b"apiVersion: v1\nkind: List\nitems:\n"
        for obj in objects:
            obj = _strip(obj)
            if self.options.redact:
                obj = redact.redact_object(obj, counts)
            yield yamlio.dump([obj]).encode()

    def _do_version(self, task: TaskSpec, result: TaskResult) -> None:
        info = self.client.server_version()
        self._facts["kubernetes_version"] = info.get("gitVersion")
        self._put_bytes(result, task.args["file"], yamlio.dump(info).encode())

    def _do_health(self, task: TaskSpec, result: TaskResult) -> None:
        from ciliumctl.status.status import collect
        from ciliumctl.versions import running_version

        running = running_version(self.client, self.options.namespace, self.options.release)
        self._facts["cilium_version"] = {"version": running.version, "source": running.source}
        status = collect(self.client, self.options.namespace, self.options.release)
        data = status.as_dict()
        self._facts["health"] = data
        self._put_text(result, task.args["file"], json.dumps(data, indent=2) + "\n")

    def _do_pods_summary(self, task: TaskSpec, result: TaskResult) -> None:
        rows = [("NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "NODE", "IP")]
        for pod in self.client.iter_list("v1", "Pod"):
            meta, spec, st = pod["metadata"], pod.get("spec") or {}, pod.get("status") or {}
            statuses = st.get("containerStatuses") or []
            ready = sum(1 for c in statuses if c.get("ready"))
            restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
            rows.append(
                (
                    str(meta.get("namespace", "")),
                    str(meta["name"]),
                    f"{ready}/{len(spec.get('containers') or [])}",
                    str(st.get("phase", "Unknown")),
                    str(restarts),
                    str(spec.get("nodeName") or "<none>"),
                    str(st.get("podIP") or "<none>"),
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        text = "".join(
            "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() + "\n"
            for row in rows
        )
        self._put_text(result, task.args["file"], text)

    def _do_helm(self, task: TaskSpec, result: TaskResult) -> None:
        from ciliumctl.versions import decode_helm_release

        ns, release = self.options.namespace, self.options.release
        secrets = self.client.list("v1", "Secret", ns, label_selector=f"owner=helm,name={release}")
        if not secrets:
            raise _TaskSkipped(f"no Helm release {release!r} in {ns}")

        def revision(s: dict[str, Any]) -> tuple[int, int]:
            labels = s["metadata"].get("labels") or {}
            return (labels.get("status") == "deployed", int(labels.get("version", 0)))

        latest = max(secrets, key=revision)
        rel = decode_helm_release((latest.get("data") or {}).get("release", ""))
        info, chart = rel.get("info") or {}, (rel.get("chart") or {}).get("metadata") or {}
        metadata = {
            "name": rel.get("name"),
            "namespace": rel.get("namespace"),
            "revision": rel.get("version"),
            "status": info.get("status"),
            "first_deployed": info.get("first_deployed"),
            "last_deployed": info.get("last_deployed"),
            "description": info.get("description"),
            "chart": chart.get("name"),
            "version": chart.get("version"),
            "app_version": chart.get("appVersion"),
        }
        self._facts["helm"] = metadata
        self._put_bytes(result, task.args["metadata"], yamlio.dump(metadata).encode())
        values = rel.get("config") or {}
        if self.options.redact:
            values = redact.redact_object(values, self._counts(self._entry(task.args["values"])))
        self._put_bytes(result, task.args["values"], yamlio.dump(values).encode())

    def _do_secrets(self, task: TaskSpec, result: TaskResult) -> None:
        secrets = self.client.iter_list("v1", "Secret", task.args["namespace"])
        chunks = self._yaml_objects(task.args["file"], (redact.secret_summary(s) for s in secrets))
        self._put_stream(result, task.args["file"], chunks, text=False)

    def _do_list(self, task: TaskSpec, result: TaskResult) -> None:
        from ciliumctl.k8s.errors import NotFoundError

        args = task.args
        try:
            objects = self.client.iter_list(args["api_version"], args["kind"], args["namespace"])
            first = next(objects, None)
        except NotFoundError as exc:
            raise _TaskSkipped(f"not served by this cluster: {exc.message}") from exc
        items = iter(()) if first is None else _prepend(first, objects)
        chunks = self._yaml_objects(args["file"], items)
        self._put_stream(result, args["file"], chunks, text=False)

    def _do_get(self, task: TaskSpec, result: TaskResult) -> None:
        args = task.args
        obj = self.client.get_or_none(args["api_version"], args["kind"], args["name"], args["ns"])
        if obj is None:
            raise _TaskSkipped(f"{args['kind']} {args['ns']}/{args['name']} not found")
        obj = _strip(obj)
        if self.options.redact:
            obj = redact.redact_object(obj, self._counts(self._entry(args["file"])))
        self._put_bytes(result, args["file"], yamlio.dump(obj).encode())

    def _do_logs(self, task: TaskSpec, result: TaskResult) -> None:
        from ciliumctl.k8s.errors import KubeError

        args = task.args
        since = self.now - timedelta(seconds=self.options.logs_since)
        stream = self.client.stream_pod_logs(
            args["namespace"],
            args["pod"],
            args["container"],
            since_time=since,
            limit_bytes=self.options.logs_limit_bytes,
            previous=args["previous"],
            timestamps=True,
        )
        try:
            first = next(stream, b"")
        except KubeError as exc:
            if args["previous"] and exc.status in (400, 404):
                raise _TaskSkipped("no previous instance of the container") from exc
            raise
        if not first:
            raise _TaskSkipped("empty log")
        self._put_stream(result, args["file"], _prepend(first, stream))

    def _exec_gate(self, pod: str) -> None:
        with self._lock:
            reason = self._exec_broken.get(pod)
        if reason:
            raise _TaskSkipped(f"exec unavailable in {pod}: {reason}")

    def _exec(
        self, args: dict[str, Any], argv: list[str], sink: Callable[[bytes], None], timeout: float
    ) -> ExecResult:
        from ciliumctl.k8s.errors import KubeError, KubeTimeoutError

        self._exec_gate(args["pod"])
        try:
            return self.client.exec_stream(
                args["namespace"],
                args["pod"],
                argv,
                args["container"],
                on_stdout=sink,
                timeout=timeout,
            )
        except KubeTimeoutError:
            raise
        except KubeError as exc:
            with self._lock:
                self._exec_broken.setdefault(args["pod"], exc.message)
            raise

    def _stderr(self, res: ExecResult) -> str:
        text = res.stderr.decode("utf-8", "replace").strip()
        if self.options.redact:
            text = redact.redact_text(text, Counter())
        return text[-500:]

    def _do_agent_commands(self, task: TaskSpec, result: TaskResult) -> list[TaskResult]:
        """The agent's cilium-dbg dumps in one exec (see :mod:`ciliumctl.sysdump.demux`),
        each streamed into its own entry and reported as its own task."""
        from ciliumctl.k8s.errors import KubeError

        args = task.args
        commands: list[dict[str, Any]] = args["commands"]
        results = [TaskResult(c["name"], "exec", "ok", result.started, 0.0) for c in commands]
        try:
            self._exec_gate(args["pod"])
        except _TaskSkipped as exc:
            for r in results:
                r.outcome, r.error = "skipped", str(exc)
            return results
        boundary = demux.new_boundary()
        script = demux.batch_script([c["argv"] for c in commands])
        stamps: dict[int, int] = {}
        codes: dict[int, int] = {}
        current: dict[str, Any] = {}

        def close_section(index: int) -> None:
            buf = current.pop("buf", None)
            stream = current.pop("stream", None)
            if buf is None:
                return
            with buf:
                if stream is not None:
                    buf.write(stream.finish())
                if buf.tell():
                    assert self.archive is not None
                    name = self.archive.unique(self._entry(commands[index]["file"]))
                    results[index].bytes += self.archive.add_file(name, buf)
                    results[index].entries.append(name)

        def on_data(section: int, chunk: bytes) -> None:
            if section >= len(commands):
                return
            if "buf" not in current:
                current["buf"] = spool()
                if self.options.redact:
                    entry = self._entry(commands[section]["file"])
                    current["stream"] = redact.StreamRedactor(self._counts(entry))
            stream = current.get("stream")
            current["buf"].write(stream.feed(chunk) if stream else chunk)

        def on_marker(fields: list[str]) -> None:
            if fields[:1] == ["start"] and len(fields) > 1 and fields[1].isdigit():
                stamps[-1] = int(fields[1])
            elif fields[:1] == ["end"] and len(fields) >= 3 and fields[1].isdigit():
                index = int(fields[1])
                if 0 <= index < len(commands):
                    close_section(index)
                    codes[index] = int(fields[2]) if fields[2].lstrip("-").isdigit() else -1
                    if len(fields) > 3 and fields[3].isdigit():
                        stamps[index] = int(fields[3])

        splitter = demux.SectionSplitter(boundary, on_data, on_marker)
        stderr_parts = [""] * len(commands)
        error = ""
        try:
            res = self._exec(
                args,
                ["sh", "-c", script, "sh", boundary],
                splitter.feed,
                self.options.exec_timeout * max(1, len(commands)),
            )
            splitter.finish()
            stderr_parts = demux.split_stderr(res.stderr, boundary, len(commands))
            if len(codes) < len(commands):
                error = f"the batch ended early (exit code {res.exit_code})"
        except KubeError as exc:
            error = exc.message
        finally:
            if "buf" in current:
                current.pop("buf").close()
        previous_stamp = stamps.get(-1)
        failed_once = False
        for index, r in enumerate(results):
            stamp = stamps.get(index)
            if previous_stamp is not None and stamp is not None:
                r.started = result.started + (previous_stamp - stamps[-1]) / 1e9
                r.duration = (stamp - previous_stamp) / 1e9
            previous_stamp = stamp
            detail = stderr_parts[index]
            if self.options.redact and detail:
                detail = redact.redact_text(detail, Counter())
            if index not in codes:
                if failed_once:
                    r.outcome, r.error = "skipped", f"not run: {error}"
                else:
                    r.outcome, r.error = "failed", error + (f": {detail[-300:]}" if detail else "")
                    failed_once = True
            elif codes[index] != 0:
                r.outcome = "failed"
                r.error = f"exit code {codes[index]}: " + (detail[-300:] or "no error output")
        return results

    def _do_bugtool(self, task: TaskSpec, result: TaskResult) -> None:
        args = task.args
        out = bytearray()

        def keep(chunk: bytes) -> None:
            if len(out) < 1 << 20:
                out.extend(chunk)

        res = self._exec(args, BUGTOOL_COMMAND, keep, self.options.bugtool_timeout)
        text = out.decode("utf-8", "replace") + "\n" + res.stderr.decode("utf-8", "replace")
        match = _BUGTOOL_PATH.search(text)
        if res.exit_code != 0 or match is None:
            raise _TaskFailed(
                f"cilium-bugtool exit code {res.exit_code}, no archive path in its output: "
                + (self._stderr(res) or "no output")
            )
        remote = match.group(1)
        with spool() as archive:

            def save(chunk: bytes) -> None:
                archive.write(chunk)

            # Copy it out and remove it from the pod in one exec.
            copy = ["sh", "-c", 'cat -- "$1" && rm -f -- "$1"', "sh", remote]
            copied = self._exec(args, copy, save, self.options.bugtool_timeout)
            if copied.exit_code != 0:
                raise _TaskFailed(f"copying {remote} failed: {self._stderr(copied)}")
            archive.seek(0)
            self._unpack(archive, self._entry(args["dir"]), result)

    def _unpack(self, source: IO[bytes], directory: str, result: TaskResult) -> None:
        """Unpack a bugtool .tar.gz under ``directory`` (top directory stripped, paths checked)."""
        total = 0
        with tarfile.open(fileobj=source, mode="r:gz") as tar:
            for member in tar:
                if not member.isreg():
                    continue
                rel = _strip_top(member.name)
                if rel is None:
                    raise _TaskFailed(f"unsafe path in the bugtool archive: {member.name!r}")
                total += member.size
                if total > BUGTOOL_MAX_UNPACKED:
                    raise _TaskFailed("the bugtool archive unpacks to more than 4 GiB")
                handle = tar.extractfile(member)
                if handle is None:
                    continue
                name = f"{directory}/{rel}"
                chunks = _read_chunks(handle)
                if self.options.redact:
                    first = next(chunks, b"")
                    if b"\0" in first[:8192]:
                        self._counts(self._entry(name))["binary-file-omitted"] += 1
                        continue
                    chunks = _prepend(first, chunks)
                self._put_stream(result, name, chunks)

    # ------------------------------------------------------------------ the end
    def _finalize(self, interrupted: bool) -> dict[str, Any]:
        """Write the log, redaction counts, summary and index; close the zip."""
        assert self.archive is not None
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            with self._lock:
                results = list(self._results)
                redactions = {k: dict(v) for k, v in self._redactions.items() if v}
            summary = self._summary(results, redactions, interrupted)
            meta = {
                "sysdump.log": self._log_text(results, interrupted).encode(),
                "redactions.json": json.dumps(
                    {
                        "enabled": self.options.redact,
                        "marker": redact.MARKER,
                        "total": sum(sum(v.values()) for v in redactions.values()),
                        "by_rule": dict(sum((Counter(v) for v in redactions.values()), Counter())),
                        "entries": redactions,
                    },
                    indent=2,
                    sort_keys=True,
                ).encode(),
                "summary.json": json.dumps(summary, indent=2, default=str).encode(),
                "index.md": _index_md(summary).encode(),
            }
            for name, data in meta.items():
                self.archive.add_bytes(self.archive.unique(name), data)
            self.archive.close()
            return summary
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _summary(
        self, results: list[TaskResult], redactions: dict[str, dict[str, int]], interrupted: bool
    ) -> dict[str, Any]:
        assert self.archive is not None
        outcomes = Counter(r.outcome for r in results if r.action != "inventory")
        health = self._facts.get("health") or {}
        return {
            "tool": f"ciliumctl {self.version}".strip(),
            "archive": self.archive.path.name,
            "started": self.now.isoformat(),
            "duration_seconds": round(time.monotonic() - self._t0, 3),
            "interrupted": interrupted,
            "options": {
                k: v for k, v in asdict(self.options).items() if not k.startswith("large_")
            },
            "kubernetes": {"version": self._facts.get("kubernetes_version")},
            "cilium": {
                **(self._facts.get("cilium_version") or {"version": None}),
                "namespace": self.options.namespace,
                "helm_release": self._facts.get("helm"),
                "agents": self._facts.get("agents", 0),
                "agents_unready": self._facts.get("agents_unready", []),
            },
            "nodes": {
                "total": self._facts.get("nodes_total", 0),
                "selected": len(self._facts.get("nodes_selected", [])),
                "selected_names": self._facts.get("nodes_selected", []),
            },
            "health": {
                "ok": health.get("ok"),
                "errors": health.get("errors", []),
                "warnings": health.get("warnings", []),
                "components": {c["name"]: c["state"] for c in health.get("components", [])},
            },
            "tasks": {
                "total": self._total,
                "finished": sum(outcomes.values()),
                "ok": outcomes.get("ok", 0),
                "failed": outcomes.get("failed", 0),
                "skipped": outcomes.get("skipped", 0),
            },
            "failures": [
                {"task": r.name, "error": r.error} for r in results if r.outcome == "failed"
            ],
            "warnings": list(self.warnings),
            "redaction": {
                "enabled": self.options.redact,
                "total": sum(sum(v.values()) for v in redactions.values()),
                "entries": len(redactions),
            },
            "bytes": self.archive.bytes_written,
            "entries": len(self.archive.entries),
        }

    def _log_text(self, results: list[TaskResult], interrupted: bool) -> str:
        lines = [
            f"cilium sysdump by ciliumctl {self.version}".rstrip(),
            f"started {self.now.isoformat()}, options {json.dumps(asdict(self.options))}",
        ]
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append(f"{'start':>9} {'duration':>9}  {'outcome':<8} {'bytes':>12}  task")
        for r in sorted(results, key=lambda r: r.started):
            line = f"{r.started:8.3f}s {r.duration:8.3f}s  {r.outcome:<8} {r.bytes:>12}  {r.name}"
            if r.error:
                line += f"  -- {r.error}"
            lines.append(line)
        unfinished = self._total - sum(1 for r in results if r.action != "inventory")
        if interrupted:
            lines.append(f"interrupted: {unfinished} tasks did not finish")
        lines.append(f"finished after {time.monotonic() - self._t0:.3f}s")
        return "\n".join(lines) + "\n"


def _index_md(summary: dict[str, Any]) -> str:
    """The summary for people, in Markdown."""
    cilium, nodes, tasks, health = (
        summary["cilium"],
        summary["nodes"],
        summary["tasks"],
        summary["health"],
    )
    out = [
        f"# Cilium sysdump {summary['archive']}",
        "",
        f"- Collected by {summary['tool']} at {summary['started']}"
        f" in {summary['duration_seconds']:.1f}s"
        + (" (**interrupted**: partial archive)" if summary["interrupted"] else ""),
        f"- Kubernetes: {summary['kubernetes']['version'] or 'unknown'}",
        f"- Cilium: {cilium.get('version') or 'not found'} in namespace {cilium['namespace']}"
        f" ({cilium['agents']} agents"
        + (f", unready: {', '.join(cilium['agents_unready'])}" if cilium["agents_unready"] else "")
        + ")",
        f"- Nodes: {nodes['total']} ({nodes['selected']} selected for logs and commands)",
        f"- Health: {'OK' if health['ok'] else 'errors' if health['ok'] is False else 'unknown'}",
        f"- Tasks: {tasks['ok']} ok, {tasks['failed']} failed, {tasks['skipped']} skipped"
        f" of {tasks['total']}",
        f"- Redaction: {'on' if summary['redaction']['enabled'] else 'OFF'},"
        f" {summary['redaction']['total']} values replaced (see redactions.json)",
        "",
    ]
    if health["components"]:
        out += ["## Components", "", "| component | state |", "|---|---|"]
        out += [f"| {k} | {v} |" for k, v in health["components"].items()]
        out.append("")
    for title, items in (
        ("Health errors", health["errors"]),
        ("Health warnings", health["warnings"]),
    ):
        if items:
            out += [f"## {title}", ""] + [f"- {i}" for i in items] + [""]
    if summary["failures"]:
        out += ["## What failed", "", "| task | why |", "|---|---|"]
        out += [
            f"| {f['task']} | {f['error'].replace('|', '/').replace(chr(10), ' ')} |"
            for f in summary["failures"]
        ]
        out.append("")
    if summary["warnings"]:
        out += ["## Warnings", ""] + [f"- {w}" for w in summary["warnings"]] + [""]
    out += ["Every task, its duration and outcome: `sysdump.log`.", ""]
    return "\n".join(out)


def _strip(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop managedFields (noise) from an object's metadata."""
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        obj = {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _strip_top(name: str) -> str | None:
    """``top/a/b`` -> ``a/b``; None for absolute paths, ``..`` or nothing below the top."""
    if name.startswith("/") or "\\" in name:
        return None
    parts = [p for p in PurePosixPath(name).parts if p not in ("", ".")]
    if len(parts) < 2 or ".." in parts:
        return None
    rest = "/".join(parts[1:])
    try:
        return check_entry_name(rest)
    except ArchiveError:
        return None


def _read_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    while True:
        chunk = handle.read(_CHUNK)
        if not chunk:
            return
        yield chunk


def _prepend(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest
