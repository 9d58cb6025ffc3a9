"""Read multi-document YAML keeping the line of every key and value.

The stream is split into documents first, so that a syntax error in one document is
reported with its file and line while the other documents are still parsed. Duplicate keys
(which YAML parsers silently collapse) are reported too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ciliumctl.validators.findings import Path

_DOC_START = re.compile(r"^---(?:[ \t].*)?$")
_DOC_END = re.compile(r"^\.\.\.[ \t]*$")
_DIRECTIVE = re.compile(r"^%")
MAX_DEPTH = 200


@dataclass(frozen=True)
class YamlProblem:
    """A syntax problem: the line (1-based, in the whole file) and what is wrong."""

    line: int | None
    message: str


@dataclass
class Document:
    """One YAML document of a file, parsed, with the line of each JSON path."""

    source: str
    index: int
    start_line: int
    data: Any = None
    empty: bool = False
    error: YamlProblem | None = None
    duplicates: list[tuple[Path, int]] = field(default_factory=list)
    lines: dict[Path, int] = field(default_factory=dict)

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        probe = tuple(path)
        while True:
            if probe in self.lines:
                return self.lines[probe]
            if not probe:
                return self.start_line if not self.lines else None
            probe = probe[:-1]


def split_documents(text: str) -> Iterator[tuple[int, str]]:
    """Yield (first line number, text) for each document of a YAML stream."""
    lines = text.splitlines(keepends=True)
    start = 1
    chunk: list[str] = []
    seen_content = False
    for number, line in enumerate(lines, start=1):
        bare = line.rstrip("\r\n")
        if _DOC_START.match(bare):
            if seen_content or any(s.strip() and not s.lstrip().startswith("#") for s in chunk):
                yield start, "".join(chunk)
            # Keep the text after '---' on the marker line (e.g. '--- !tag' or '--- {a: 1}').
            rest = bare[3:]
            chunk = [" " * 3 + rest + "\n"] if rest.strip() else ["\n"]
            start = number
            seen_content = bool(rest.strip()) and not rest.strip().startswith("#")
            continue
        if _DOC_END.match(bare):
            chunk.append("\n")
            yield start, "".join(chunk)
            chunk, start, seen_content = [], number + 1, False
            continue
        if _DIRECTIVE.match(bare) and not seen_content:
            chunk.append("\n")
            continue
        chunk.append(line)
        if bare.strip() and not bare.lstrip().startswith("#"):
            seen_content = True
    if seen_content or any(s.strip() and not s.lstrip().startswith("#") for s in chunk):
        yield start, "".join(chunk)


def load_documents(text: str, source: str) -> list[Document]:
    """Parse every document of ``text``; syntax errors are recorded, never raised."""
    docs: list[Document] = []
    for index, (start, chunk) in enumerate(split_documents(text)):
        doc = Document(source=source, index=index, start_line=start)
        _parse_into(doc, chunk, start)
        docs.append(doc)
    return docs


def _parse_into(doc: Document, chunk: str, start: int) -> None:
    import yaml

    # Line numbers inside the chunk are 0-based; the chunk begins at line `start`.
    offset = start
    try:
        loader = yaml.SafeLoader(chunk)
        try:
            node = loader.get_single_node()
            if node is None:
                doc.empty = True
                return
            builder = _Builder(loader, doc, offset)
            doc.data = builder.build(node, (), 0)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + offset if mark is not None else None
        what = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        doc.error = YamlProblem(line, f"{what}{context}")
    except yaml.YAMLError as exc:
        doc.error = YamlProblem(start, str(exc).splitlines()[0] if str(exc) else "invalid YAML")
    except _TooDeep as exc:
        doc.error = YamlProblem(exc.line, f"nesting deeper than {MAX_DEPTH} levels")
    except (ValueError, TypeError, OverflowError) as exc:
        # Constructor failures on odd scalars (e.g. timestamps out of range).
        doc.error = YamlProblem(start, f"cannot read a value: {exc}")


class _TooDeep(Exception):
    def __init__(self, line: int) -> None:
        super().__init__(line)
        self.line = line


class _Builder:
    """Turns a composed node tree into Python data, recording lines and duplicates."""

    def __init__(self, loader: Any, doc: Document, offset: int) -> None:
        self.loader = loader
        self.doc = doc
        self.offset = offset
        self.active: set[int] = set()

    def build(self, node: Any, path: Path, depth: int) -> Any:
        import yaml

        line = node.start_mark.line + self.offset
        self.doc.lines.setdefault(path, line)
        if depth > MAX_DEPTH or id(node) in self.active:
            raise _TooDeep(line)
        if isinstance(node, yaml.ScalarNode):
            return self.loader.construct_object(node, deep=True)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return [
                    self.build(item, (*path, index), depth + 1)
                    for index, item in enumerate(node.value)
                ]
            if isinstance(node, yaml.MappingNode):
                self.loader.flatten_mapping(node)
                out: dict[Any, Any] = {}
                for key_node, value_node in node.value:
                    key = self.build(key_node, (*path, "<key>"), depth + 1)
                    if isinstance(key, list | dict):
                        key = str(key)
                    child: Path = (*path, key if isinstance(key, str) else str(key))
                    key_line = key_node.start_mark.line + self.offset
                    if key in out:
                        self.doc.duplicates.append((child, key_line))
                    self.doc.lines[child] = key_line
                    out[key] = self.build(value_node, child, depth + 1)
                self.doc.lines.pop((*path, "<key>"), None)
                return out
        finally:
            self.active.discard(id(node))
        return self.loader.construct_object(node, deep=True)
