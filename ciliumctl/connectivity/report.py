"""The end-of-run report in cilium-cli's words, with why each failed action failed, and the
JUnit XML file (``--junit-file``) in cilium-cli's layout."""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from ciliumctl.connectivity.runner import NamespaceRun, RunResult, TestResult
from ciliumctl.errors import ConfigError


def _counts(run: NamespaceRun) -> tuple[int, int, int, int, int, int]:
    tests = run.tests
    skipped = [t for t in tests if t.skipped]
    failed = [t for t in tests if t.failed]
    actions = [o for t in tests for o in t.outcomes]
    failed_actions = [o for o in actions if not o.passed]
    scen_skipped = sum(len(t.skipped_scenarios) for t in tests)
    return len(tests), len(skipped), len(failed), len(actions), len(failed_actions), scen_skipped


def summary_line(run: NamespaceRun) -> str:
    """cilium-cli's final line: the ✅ or ❌ summary."""
    nt, nst, nf, na, nfa, nss = _counts(run)
    if nf:
        return (
            f"❌ {nf}/{nt - nst} tests failed ({nfa}/{na} actions), {nst} tests skipped, "
            f"{nss} scenarios skipped:"
        )
    return (
        f"✅ [{run.namespace}] All {nt - nst} tests ({na} actions) successful, "
        f"{nst} tests skipped, {nss} scenarios skipped."
    )


def _explain(t: TestResult) -> list[str]:
    lines = [f"Test [{t.name}]:"]
    for message in t.errors:
        lines.append(f"  ❌ {message}")
    for o in t.outcomes:
        if o.passed:
            continue
        lines.append(f"  ❌ {o.action}")
        lines.append(f"      expected: {o.action.expectation.describe()}")
        lines.append(f"      seen:     {o.seen()} after {o.duration:.1f}s")
        err = o.stderr.strip().splitlines()
        if err:
            lines.append(f"      stderr:   {err[-1][:300]}")
        for d in o.drops:
            lines.append(f"      dropped:  {d.describe()}")
        for w in o.flow_warnings:
            if not o.drops or not w.startswith("unexpected"):
                lines.append(f"      flows:    {w}")
        if not o.action.check:
            policies = ", ".join(o.policies) if o.policies else "none"
            lines.append(f"      policies selecting the endpoints: {policies}")
            src = o.action.src.node or "?"
            dst = o.action.dst.node or (
                "its backends" if o.action.dst.kind == "service" else "outside the cluster"
            )
            lines.append(f"      nodes:    source on {src}, destination on {dst}")
    return lines


def render(result: RunResult) -> list[str]:
    """The report's lines, one block per test namespace."""
    lines: list[str] = []
    for note in result.notes:
        lines.append(f"⚠️  {note}")
    for run in result.runs:
        nt, _, nf, *_ = _counts(run)
        if not nt:
            continue
        if nf:
            lines.append("")
            lines.append(f"📋 Test Report [{run.namespace}]")
            lines.append(summary_line(run))
            for t in run.tests:
                if t.failed:
                    lines.extend(_explain(t))
        else:
            lines.append(summary_line(run))
    for path in result.sysdumps:
        lines.append(f"📦 sysdump written to {path}")
    return lines


def junit_xml(result: RunResult, properties: dict[str, str], args: list[str]) -> bytes:
    """The JUnit document: one ``connectivity test`` suite, a case per test."""
    suite = ET.Element("testsuite", {"name": "connectivity test", "package": "cilium"})
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", {"name": "Args", "value": "|".join(args)})
    for key, value in properties.items():
        ET.SubElement(props, "property", {"name": key, "value": value})
    tests = failures = skipped = 0
    total_time = 0.0
    for run in result.runs:
        for t in run.tests:
            tests += 1
            seconds = 0.0 if t.skipped else t.seconds
            total_time += seconds
            case = ET.SubElement(
                suite,
                "testcase",
                {"name": t.name, "classname": "connectivity test", "time": f"{seconds:.3f}"},
            )
            if t.skipped:
                skipped += 1
                case.set("status", "skipped")
                ET.SubElement(case, "skipped", {"message": f"{t.name} skipped: {t.skipped}"})
            elif t.failed:
                failures += 1
                case.set("status", "failed")
                fail = ET.SubElement(
                    case, "failure", {"message": f"{t.name} failed", "type": "failure"}
                )
                fail.text = "\n".join(_explain(t)[1:])
            else:
                case.set("status", "passed")
    suite.set("tests", str(tests))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("time", f"{total_time:.3f}")
    suite.set("timestamp", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    root = ET.Element(
        "testsuites",
        {
            "tests": str(tests),
            "disabled": str(skipped),
            "failures": str(failures),
            "time": f"{total_time:.3f}",
        },
    )
    root.append(suite)
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data + b"\n"


def write_junit(path: str, data: bytes) -> None:
    """Write the JUnit file atomically (a reader never sees half a file)."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=target.name + ".tmp-", dir=directory)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        raise ConfigError(
            f"cannot write --junit-file {path}: {exc.strerror or exc}",
            "choose a writable path",
        ) from exc
