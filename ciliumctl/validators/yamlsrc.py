"""Read multi-document YAML keeping the line of every key and value.

The stream is split into documents first, so that a syntax error in one document is
reported with its file and line while the other documents are still parsed. Duplicate keys
(which YAML parsers silently collapse) are reported too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache, partial
from typing import Any

from ciliumctl.validators.findings import Path

_DOC_START = re.compile(r"^---(?:[ \t].*)?$")
_DOC_END = re.compile(r"^\.\.\.[ \t]*$")
_DIRECTIVE = re.compile(r"^%")
#: The marker lines of a stream whose only line break is "\n" (what _DOC_START, _DOC_END
#: and _DIRECTIVE match line by line).
_MARKER = re.compile(
    r"^(?:(?P<start>---)(?P<rest>[ \t][^\n]*)?|(?P<end>\.\.\.)[ \t]*|%[^\n]*)$", re.MULTILINE
)
#: Where a :data:`_MARKER` line may start after the text's first line: a search for it
#: starts with a literal "\n", which the regex engine finds far faster than a "^".
_MARKER_AFTER = re.compile(r"\n(?=---|\.\.\.|%)")
#: A line that is neither blank nor a comment.
_CONTENT = re.compile(r"^[^\S\n]*[^\s#]", re.MULTILINE)
#: Line breaks other than "\n" (str.splitlines breaks on all of them).
_ODD_BREAKS = re.compile("[\r\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")
#: Characters libyaml and PyYAML may read differently (tags, tabs, controls, breaks other
#: than "\n", byte-order marks, surrogates); documents with any of them take the pure-Python path.
_SLOW_CHARS_PATTERN = "[^\n\x20\x22-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
#: :data:`_SLOW_CHARS_PATTERN` for an ASCII text (the full class takes milliseconds to
#: compile, which every process start would pay).
_SLOW_ASCII = re.compile("[^\n\x20\x22-\x7e]")
#: Constructs libyaml accepts and PyYAML rejects: a comment right after a block scalar
#: header ("|#"), and "?" inside a flow collection ("{a?: b}", when _FLOW also matches).
_SLOW_SYNTAX = re.compile(r"[|>][-+0-9]*#")
_FLOW = re.compile(r"(?:^|[\s,\[{])[\[{]", re.MULTILINE)
MAX_DEPTH = 200
#: What the Rust parser (yaml_rs, YAML 1.2) may read otherwise than PyYAML (YAML 1.1), or
#: than libyaml's error paths: anchors, aliases, tags, block scalars, directives, reserved
#: indicators and complex keys where a token starts; escapes; merge keys; flow collections
#: other than an empty {}, [] or [{}].
_RS_UNSAFE = re.compile(
    r"[&*!|>%@`?\\<{}\[\]](?:"
    r"(?<![^\s,:\[{].)(?<=[&*!|>%@`?])"  # an indicator that starts a token
    r"|(?<=\\)|(?<=<)<"  # an escape; a merge key
    r"|(?<=\{)(?!\})|(?<=\})(?<!\{\})|(?<=\[)(?!\]|\{\}\])|(?<=\])(?<!\[\])(?<!\[\{\}\])"  # flow
    r")"
)
#: A character that makes a text take the detailed screening of :func:`_parse_into`: any
#: but "\n" and the printable ASCII characters that none of :data:`_SLOW_ASCII`,
#: :data:`_SLOW_SYNTAX`, the "?" test and :data:`_RS_UNSAFE` can match on ("*" aside).
_SCREEN = re.compile(r"[^\n \"#$'()*+,\-./0-9:;=A-Z^_a-z~]")
#: A "*" that starts a token (an alias), the one way "*" matches :data:`_RS_UNSAFE`; the
#: lookbehind runs only where a "*" is (a "*" inside a plain scalar, as in ".*", is fine).
_TOKEN_STAR = re.compile(r"\*(?<![^\s,:\[{]\*)")
#: Integer spellings the two parsers read differently (leading zeros: octal in YAML 1.1,
#: decimal in 1.2; 0o..; underscores): a document with one keeps its integers off this path.
_RS_RISKY_INT = re.compile(r"(?<![0-9A-Za-z_.])[-+]?0[0-9A-Za-z_]|[0-9]_|_[0-9]")
#: Strings yaml_rs reads as null, a boolean or an integer when they are plain: a ``str``
#: with one of these texts was quoted, which PyYAML reads as a string too.
_RS_TYPED_IF_PLAIN = re.compile(
    r"[-+]?(?:0|[1-9][0-9]*)|true|True|TRUE|false|False|FALSE|null|Null|NULL|~|"
)


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
    #: (constructor, root node, first line) of a libyaml parse whose lines are not worked
    #: out yet: most documents never need them.
    pending_lines: tuple[Any, Any, int] | None = field(default=None, repr=False, compare=False)

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        if self.pending_lines is not None:
            loader, node, offset = self.pending_lines
            self.pending_lines = None
            if loader is None:  # read by yaml_rs: compose with libyaml now (``node`` is the text)
                loader = _c_loader()(node)
                try:
                    node = loader.get_single_node()
                finally:
                    loader.dispose()
            _Builder(loader, self, offset).build(node, (), 0)
        probe = tuple(path)
        while True:
            if probe in self.lines:
                return self.lines[probe]
            if not probe:
                return self.start_line if not self.lines else None
            probe = probe[:-1]


def _slow_chars(chunk: str) -> re.Match[str] | None:
    """The first character of ``chunk`` that sends it to the pure-Python path, if any."""
    if chunk.isascii():
        return _SLOW_ASCII.search(chunk)
    return _slow_chars_pattern().search(chunk)


@cache
def _slow_chars_pattern() -> re.Pattern[str]:
    return re.compile(_SLOW_CHARS_PATTERN)


#: The line breaks of :data:`_ODD_BREAKS` an ASCII text can have.
_ASCII_ODD_BREAKS = "\r\x0b\x0c\x1c\x1d\x1e"


def has_odd_breaks(text: str) -> bool:
    """True when ``text`` has a line break other than "\n" (:data:`_ODD_BREAKS`). An ASCII
    text (the usual one; Python knows it without a scan) is searched for each of the six
    it can have, each search far faster than the regex's character class on megabytes."""
    if text.isascii():
        return any(char in text for char in _ASCII_ODD_BREAKS)
    return _ODD_BREAKS.search(text) is not None


def split_documents(text: str) -> Iterator[tuple[int, str]]:
    """Yield (first line number, text) for each document of a YAML stream.

    Marker lines (``---``, ``...``, directives) are replaced by blank lines so that line
    numbers inside each document stay those of the file.
    """
    if not has_odd_breaks(text):
        yield from _split_plain(text)
    else:
        yield from _split_lines(text)


def _split_plain(text: str) -> Iterator[tuple[int, str]]:
    """:func:`_split_lines` for texts whose only line break is ``\\n``, jumping from one
    marker line to the next with a regex instead of visiting every line (same output)."""
    chunk: list[str] = []
    start = line = 1
    pos = 0
    seen_content = False
    for match in _markers(text):
        between = text[pos : match.start()]
        line += between.count("\n")
        if between:
            chunk.append(between)
            seen_content = seen_content or _CONTENT.search(between) is not None
        pos = match.end() + 1 if match.end() < len(text) else match.end()
        if match.group("start") is not None:
            if seen_content:
                yield start, "".join(chunk)
            rest = match.group("rest") or ""
            chunk = [" " * 3 + rest + "\n"] if rest.strip() else ["\n"]
            start = line
            seen_content = bool(rest.strip()) and not rest.strip().startswith("#")
        elif match.group("end") is not None:
            chunk.append("\n")
            yield start, "".join(chunk)
            chunk, start, seen_content = [], line + 1, False
        elif not seen_content:
            chunk.append("\n")  # a directive
        else:
            chunk.append(text[match.start() : pos])  # '%' inside a document is content
        line += 1
    if pos < len(text):
        chunk.append(text[pos:])
        seen_content = seen_content or _CONTENT.search(text, pos) is not None
    if seen_content:
        yield start, "".join(chunk)


def _markers(text: str) -> Iterator[re.Match[str]]:
    """``_MARKER.finditer(text)``: the marker lines, each tried only where a line starts
    with one of their first characters."""
    match = _MARKER.match(text)
    if match is not None:
        yield match
    marker = _MARKER.match
    for candidate in _MARKER_AFTER.finditer(text):
        match = marker(text, candidate.end())
        if match is not None:
            yield match


def _split_lines(text: str) -> Iterator[tuple[int, str]]:
    """The document splitter for any text (every Unicode line break), line by line."""
    lines = text.splitlines(keepends=True)
    start = 1
    chunk: list[str] = []
    seen_content = False
    for number, line in enumerate(lines, start=1):
        bare = line.rstrip("\r\n")
        if _DOC_START.match(bare):
            if seen_content:
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
    if seen_content:
        yield start, "".join(chunk)


def load_documents(text: str, source: str) -> list[Document]:
    """Parse every document of ``text``; syntax errors are recorded, never raised."""
    return list(iter_documents(text, source))


def iter_documents(text: str, source: str) -> Iterator[Document]:
    """:func:`load_documents` one document at a time (each is parsed when it is reached)."""
    for index, (start, chunk) in enumerate(split_documents(text)):
        yield parse_document(source, index, start, chunk)


def parse_document(source: str, index: int, start: int, chunk: str) -> Document:
    """Parse one document that :func:`split_documents` yielded (index, start line, text)."""
    doc = Document(source=source, index=index, start_line=start)
    _parse_into(doc, chunk, start)
    return doc


def _parse_into(doc: Document, chunk: str, start: int) -> None:
    """Parse with libyaml when it can give the same result, else with PyYAML's own parser.

    libyaml composes the nodes (with their marks) in C and a builder that records nothing
    turns them into data; the lines of the JSON paths are worked out later from the same
    nodes, only when a finding asks for one. Whatever the fast path cannot reproduce
    exactly (syntax errors and their messages, duplicate keys, merge errors, nesting too
    deep, unusual characters) is parsed again by the pure-Python path, the reference.
    """
    loader_class = _c_loader()
    # The usual text has none of the characters the screens below look for: one search.
    screened = _SCREEN.search(chunk) is None and (
        "*" not in chunk or _TOKEN_STAR.search(chunk) is None
    )
    fast = (
        loader_class is not None
        and (
            screened
            or (
                _slow_chars(chunk) is None
                and _SLOW_SYNTAX.search(chunk) is None
                and ("?" not in chunk or _FLOW.search(chunk) is None)
            )
        )
        # A last line "---..." without a line break: libyaml marks the empty document's
        # null a line further than PyYAML (split_documents never yields one; callers may).
        and not chunk[chunk.rfind("\n") + 1 :].startswith("---")
    )
    if fast and _parse_rs(doc, chunk, start, screened):
        return
    if not (fast and _parse_fast(doc, chunk, start, loader_class)):
        _parse_pure(doc, chunk, start)


def _parse_rs(doc: Document, chunk: str, start: int, screened: bool = False) -> bool:
    """True when the Rust parser read ``chunk`` (a mapping) into ``doc`` exactly as PyYAML
    would; its lines are worked out from libyaml's nodes when a finding asks for one.

    yaml_rs builds the data in native code, several times faster than composing PyYAML
    nodes. It reads YAML 1.2, so it is only trusted where 1.1 reads the same: the text
    passes :data:`_RS_UNSAFE`, and every value it returns
    passes :class:`_RsCheck` (floats, dates, 1.1-only booleans and the like send the
    document to the libyaml path). Duplicate keys are an error in yaml_rs, so they too go
    to the paths that report them. ``screened``: the text passed :data:`_SCREEN` and
    :data:`_TOKEN_STAR`, so :data:`_RS_UNSAFE` cannot match.
    """
    loads = _rs_loads()
    if loads is None or (not screened and _RS_UNSAFE.search(chunk) is not None):
        return False
    try:
        data = loads(chunk, parse_datetime=False)
    except Exception:  # any refusal means: use the reference paths
        return False
    if type(data) is not dict or not _RsCheck(chunk).same(data, 0):
        return False
    doc.data = data
    doc.pending_lines = (None, chunk, start)
    return True


@cache
def _rs_loads() -> Any:
    """yaml_rs.loads, or None when it is not installed."""
    try:
        from yaml_rs import loads
    except ImportError:
        return None
    return loads


#: Keys :meth:`_RsCheck.same` found to read the same in both parsers (str, and read as
#: a string by PyYAML whether plain or quoted): a mapping whose keys are all known is
#: passed in one set operation.
_SAME_KEYS: set[str] = set()
#: Texts PyYAML reads as a string when plain (memo of :meth:`_RsCheck.same_str`).
_PLAIN_STR: dict[str, bool] = {}


class _RsCheck:
    """Does the data yaml_rs read from ``chunk`` equal what PyYAML reads?"""

    def __init__(self, chunk: str) -> None:
        self.chunk = chunk
        self.ints_ok: bool | None = None
        self.typed_first = _typed_first()

    def same(self, value: Any, depth: int) -> bool:
        """True when ``value`` (a dict or list from yaml_rs) reads the same in PyYAML."""
        if depth > MAX_DEPTH // 2:
            return False
        typed_first, same_str = self.typed_first, self.same_str
        if value.__class__ is dict:
            if not _SAME_KEYS.issuperset(value):  # policies repeat a few dozen keys
                for key in value:
                    if key.__class__ is not str or (key[:1] in typed_first and not same_str(key)):
                        return False
                if len(_SAME_KEYS) < 10_000:
                    _SAME_KEYS.update(value)
            value = value.values()
        for item in value:
            cls = item.__class__
            if cls is str:
                if item[:1] in typed_first and not same_str(item):
                    return False
            elif cls is dict or cls is list:
                if not self.same(item, depth + 1):
                    return False
            elif not (cls is bool or item is None or (cls is int and self.same_ints())):
                return False  # floats (1e3 is a string in 1.1), anything else
        return True

    def same_ints(self) -> bool:
        """True when every integer yaml_rs read has the value PyYAML gives it: the text
        has no integer spelling the two read differently."""
        if self.ints_ok is None:
            self.ints_ok = _RS_RISKY_INT.search(self.chunk) is None
        return self.ints_ok

    @staticmethod
    def same_str(text: str) -> bool:
        """True when PyYAML reads ``text`` as this string whether it was plain or quoted
        (callers skip texts whose first character no implicit resolver starts with)."""
        known = _PLAIN_STR.get(text)
        if known is None:
            typed = _typed_matchers().get(text[:1], _typed_matchers().get(None))
            known = (
                typed is None
                or typed(text) is None
                or _RS_TYPED_IF_PLAIN.fullmatch(text) is not None
            )
            if len(_PLAIN_STR) < 100_000:
                _PLAIN_STR[text] = known
        return known


@cache
def _typed_first() -> frozenset[str]:
    """The first characters of the plain scalars PyYAML may resolve to something else
    than a string (bool, int, float, merge, null, timestamp, value, ...): the keys of its
    implicit resolvers (every character when one of them is a wildcard)."""
    import yaml

    table = yaml.SafeLoader.yaml_implicit_resolvers
    if table.get(None):
        return frozenset(chr(code) for code in range(0x110000))
    return frozenset(key for key in table if key)


@cache
def _typed_matchers() -> dict[str | None, Callable[[str], object]]:
    """First character -> one ``match`` over every implicit resolver PyYAML tries for a
    plain scalar starting with it (None: the wildcard resolvers, for any other character):
    a match means :func:`_plain_tag` is not the string tag, in one regex call."""
    import yaml

    table = yaml.SafeLoader.yaml_implicit_resolvers
    wildcard = table.get(None, [])
    out: dict[str | None, Callable[[str], object]] = {}
    for first, resolvers in [*table.items(), (None, [])]:
        if first is None and not wildcard:
            continue
        regexps = [regexp for _, regexp in [*(resolvers if first is not None else []), *wildcard]]
        if any(regexp.flags & ~(re.VERBOSE | re.IGNORECASE | re.UNICODE) for regexp in regexps):
            out[first] = _typed_by_resolver  # flags a scoped group cannot carry: ask PyYAML
            continue
        scoped = [
            f"(?{'x' if regexp.flags & re.VERBOSE else ''}{'i' if regexp.flags & re.I else ''}:"
            f"{regexp.pattern})"
            for regexp in regexps
        ]
        out[first] = re.compile("|".join(scoped)).match
    return out


def _typed_by_resolver(text: str) -> bool | None:
    return True if _plain_tag(text) != _STR_TAG else None


def _plain_tag(text: str) -> str:
    """The tag PyYAML gives ``text`` written as a plain scalar (the reference of
    :func:`_typed_matchers`)."""
    import yaml

    tag: str = _resolver().resolve(yaml.ScalarNode, text, (True, False))
    return tag


@cache
def _resolver() -> Any:
    import yaml

    return yaml.SafeLoader("")


def _parse_fast(doc: Document, chunk: str, start: int, loader_class: Any) -> bool:
    """True when libyaml parsed ``chunk`` into ``doc``; False means use :func:`_parse_pure`."""
    import yaml

    try:
        loader = loader_class(chunk)
        try:
            node = loader.get_single_node()
        finally:
            loader.dispose()
        if node is None:
            doc.empty = True
            return True
        data = _FastBuilder(loader).build(node, 0)
    except (yaml.YAMLError, _Fallback, ValueError, TypeError, OverflowError, RecursionError):
        return False
    doc.data = data
    doc.pending_lines = (loader, node, start)
    return True


def _parse_pure(doc: Document, chunk: str, start: int) -> None:
    import yaml

    doc.empty, doc.data, doc.pending_lines = False, None, None
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


class _Fallback(Exception):
    """The fast builder met something only the reference path reports exactly."""


_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAGS = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")


class _FastBuilder:
    """Composed nodes -> the data :class:`_Builder` returns, without recording lines.

    Duplicate keys, nesting beyond :data:`MAX_DEPTH` (and so recursive aliases) raise
    :class:`_Fallback`: the reference path reports them with their lines.
    """

    def __init__(self, loader: Any) -> None:
        import yaml

        self.loader = loader
        self.scalar = yaml.ScalarNode
        self.sequence = yaml.SequenceNode
        self.mapping = yaml.MappingNode

    def build(self, node: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise _Fallback
        cls = type(node)
        if cls is self.scalar:
            if node.tag == _STR_TAG:
                return node.value
            return self.loader.construct_object(node, deep=True)
        # A child one level down may be inlined when that level is still allowed.
        scalar = self.scalar if depth < MAX_DEPTH else None
        if cls is self.sequence:
            # Plain string items are inlined: most values of a policy are strings.
            return [
                item.value
                if type(item) is scalar and item.tag == _STR_TAG
                else self.build(item, depth + 1)
                for item in node.value
            ]
        if cls is self.mapping:
            pairs = node.value
            for key_node, _ in pairs:
                if key_node.tag in _MERGE_TAGS:
                    raise _Fallback  # merges can fail half-way; the reference path reports it
            out: dict[Any, Any] = {}
            for key_node, value_node in pairs:
                if type(key_node) is self.scalar and key_node.tag == _STR_TAG:
                    key = key_node.value
                else:
                    key = self.build(key_node, depth + 1)
                    if isinstance(key, list | dict):
                        key = str(key)
                if key in out:
                    raise _Fallback
                if type(value_node) is scalar and value_node.tag == _STR_TAG:
                    out[key] = value_node.value
                else:
                    out[key] = self.build(value_node, depth + 1)
            return out
        raise _Fallback


@cache
def _c_loader() -> Any:
    """A libyaml loader class whose tag resolution is memoised (None without libyaml).

    The resolver's answer depends only on (kind, value, implicit) when no path resolvers
    are registered, and policies repeat the same keys and values over and over. The memo
    is an ``lru_cache`` set on each loader instance: libyaml's composer then resolves a
    repeated scalar without running any Python code.
    """
    import yaml

    if not getattr(yaml, "__with_libyaml__", False):
        return None
    base = yaml.CSafeLoader
    if base.yaml_path_resolvers:
        return None
    reference = base("")
    resolve = lru_cache(maxsize=100_000)(partial(base.resolve, reference))

    class Loader(base):  # type: ignore[misc,valid-type]
        def __init__(self, stream: Any) -> None:
            super().__init__(stream)
            self.resolve = resolve

        def descend_resolver(self, current_node: Any, current_index: Any) -> None:
            return None

        def ascend_resolver(self) -> None:
            return None

    return Loader


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
