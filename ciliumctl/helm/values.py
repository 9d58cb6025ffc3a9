"""Helm values from the command line: ``-f``, ``--set``, ``--set-string``, ``--set-file``.

Follows Helm's rules: files merge in order, then ``--set`` (typed: true/false/null/ints),
``--set-string`` (always strings) and ``--set-file`` (file contents). Keys are dotted paths
with ``[N]`` list indexes; ``\\,``, ``\\.`` and ``\\=`` escape; ``{a,b}`` is a list. Errors name
the file and line, or the flag and the offending text.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from ciliumctl.errors import UsageError

Values = dict[str, Any]

_INDEX = re.compile(r"^(.*?)\[(\d+)\]$")


class ValuesError(UsageError):
    """A values file or --set expression cannot be parsed."""


def merge(base: Values, override: Values) -> Values:
    """Deep-merge ``override`` into a copy of ``base`` (maps merge, everything else
    replaces; a ``None`` in ``override`` removes the key, as in Helm)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_values_file(path: str | Path) -> Values:
    """Read one ``-f`` file; malformed YAML is reported with its file and line."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8") if str(path) != "-" else _stdin()
    except OSError as exc:
        raise ValuesError(
            f"cannot read values file {p}: {exc.strerror or exc}",
            "check the path given to -f/--values",
        ) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ValuesError(
            f"values file {p}{where} is not valid YAML: {problem}",
            "fix the YAML at that line",
        ) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValuesError(
            f"values file {p} must hold a mapping at the top level, not {type(data).__name__}",
            "write values as `key: value` pairs",
        )
    return data


def _stdin() -> str:
    import sys

    return sys.stdin.read()


def _split_unescaped(text: str, sep: str, *, braces: bool = False) -> list[str]:
    parts, cur, depth, i = [], [], 0, 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if braces and ch == "{":
            depth += 1
        elif braces and ch == "}":
            depth = max(0, depth - 1)
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _typed(value: str) -> Any:
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    if lowered == "null":
        return None
    if value == "0":
        return 0
    if re.fullmatch(r"-?[1-9]\d*", value):
        return int(value)
    return value


def _value(raw: str, typed: bool) -> Any:
    if raw.startswith("{") and raw.endswith("}"):
        inner = raw[1:-1]
        items = _split_unescaped(inner, ",") if inner else []
        return [(_typed(_unescape(i)) if typed else _unescape(i)) for i in items]
    text = _unescape(raw)
    return _typed(text) if typed else text


def _assign(target: Values, path: str, value: Any, flag: str, expr: str) -> None:
    keys = [_unescape(k) for k in _split_unescaped(path, ".")]
    if not keys or any(k == "" for k in keys):
        raise ValuesError(
            f"{flag} {expr!r}: empty key in {path!r}", "use key.sub=value with non-empty keys"
        )
    cur: Any = target
    for pos, key in enumerate(keys):
        last = pos == len(keys) - 1
        match = _INDEX.match(key)
        if match:
            name, index = match.group(1), int(match.group(2))
            if index > 65535:
                raise ValuesError(
                    f"{flag} {expr!r}: list index {index} is too large", "use an index below 65536"
                )
            lst = cur.setdefault(name, [])
            if not isinstance(lst, list):
                raise ValuesError(
                    f"{flag} {expr!r}: {name!r} is not a list",
                    "do not mix list indexes and keys for one name",
                )
            while len(lst) <= index:
                lst.append(None)
            if last:
                lst[index] = value
            else:
                if not isinstance(lst[index], dict):
                    lst[index] = {}
                cur = lst[index]
        elif last:
            cur[key] = value
        else:
            nxt = cur.get(key)
            if not isinstance(nxt, dict):
                nxt = {}
                cur[key] = nxt
            cur = nxt


def parse_set(expressions: Iterable[str], *, typed: bool = True, flag: str = "--set") -> Values:
    """Parse ``--set``/``--set-string`` expressions into a values mapping."""
    out: Values = {}
    for expr in expressions:
        for item in _split_unescaped(expr, ",", braces=True):
            if not item:
                continue
            key, sep, raw = item.partition("=")
            if not sep:
                raise ValuesError(f"{flag} {expr!r}: {item!r} has no '='", f"use {flag} key=value")
            # A null leaves a marker so that merge() removes the key from lower layers.
            _assign(out, key, _value(raw, typed), flag, expr)
    return out


def parse_set_file(expressions: Iterable[str]) -> Values:
    """Parse ``--set-file key=path``: each value is the content of the file."""
    out: Values = {}
    for expr in expressions:
        key, sep, path = expr.partition("=")
        if not sep or not path:
            raise ValuesError(
                f"--set-file {expr!r}: expected key=path", "use --set-file key=path/to/file"
            )
        try:
            content = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ValuesError(
                f"--set-file {expr!r}: cannot read {path}: {exc.strerror}", "check the file path"
            ) from exc
        _assign(out, key, content, "--set-file", expr)
    return out


def user_values(
    values_files: Iterable[str] = (),
    sets: Iterable[str] = (),
    set_strings: Iterable[str] = (),
    set_files: Iterable[str] = (),
) -> Values:
    """All user-supplied values merged in Helm's order."""
    result: Values = {}
    for path in values_files:
        result = _merge_keep_null(result, load_values_file(path))
    result = _merge_keep_null(result, parse_set(sets))
    result = _merge_keep_null(result, parse_set(set_strings, typed=False, flag="--set-string"))
    return _merge_keep_null(result, parse_set_file(set_files))


def _merge_keep_null(base: Values, override: Values) -> Values:
    """Like :func:`merge` but keeps explicit nulls (they must reach Helm to unset defaults)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge_keep_null(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def flatten(values: Values, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; lists and empty maps are leaves."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


def diff_from_defaults(values: Values, defaults: Values) -> Values:
    """The part of ``values`` that differs from ``defaults`` (for --dry-run-helm-values)."""
    out: Values = {}
    for key, value in values.items():
        base = defaults.get(key)
        if isinstance(value, dict) and isinstance(base, dict):
            sub = diff_from_defaults(value, base)
            if sub:
                out[key] = sub
        elif key not in defaults or value != base:
            out[key] = copy.deepcopy(value)
    return out
