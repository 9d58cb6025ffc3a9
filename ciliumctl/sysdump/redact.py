"""Redaction: credentials found in what a sysdump archives are replaced with a marker.

cilium-cli archives Helm values, ConfigMaps, command output and logs as they are; users then
have to scrub the archive by hand before attaching it to an issue. Here every text and object
goes through these rules first:

- PEM private keys (multi-line, or on one line with ``\\n`` escapes as in JSON logs and GCP
  service-account files): the key body is replaced, the BEGIN/END lines stay.
- Bearer tokens and ``Authorization:`` headers, JWTs (ServiceAccount tokens), basic-auth
  credentials in URLs (``https://user:PASSWORD@host``).
- AWS access key ids, Azure client secrets (their ``…8Q~…`` shape).
- ``key: value`` / ``"key": "value"`` / ``key=value`` pairs in YAML, JSON, INI, env and
  logfmt forms whose key names a credential: password, passwd, secret, token, api key,
  access key, private key, credentials, kubeconfig ``client-key-data`` /
  ``client-certificate-data``. Keys that only *refer* to a credential (``secretName``,
  ``tokenFile``, ``secretsNamespace`` ...) are left alone, and so are booleans and empty
  values.

Text is handled line by line with a little state (inside a PEM block, inside a YAML block
scalar under a credential key), so arbitrarily large logs stream through in bounded memory.
Objects (dicts from the API, Helm values) are walked structurally: a credential key's scalar
value is replaced, an env-style ``{name: API_TOKEN, value: ...}`` pair too, and every other
string goes through the text rules. Redactions are counted per rule; values never are.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

MARKER = "<redacted>"

#: Words that make a key name a credential.
_KEY_TRIGGER = re.compile(
    r"password|passwd|passphrase|secret|token|api[-_]?key|apikey|access[-_]?key|"
    r"private[-_]?key|client[-_]?key[-_]?data|client[-_]?certificate[-_]?data|credential|"
    r"auth[-_]?key|signing[-_]?key|encryption[-_]?key|session[-_]?key",
    re.I,
)
#: Key endings that name *where* a credential is, or a setting about it, not the credential.
_KEY_EXEMPT_SUFFIX = re.compile(
    r"(?:name|names|namespace|ref|refs|file|files|path|paths|dir|directory|mountpath|"
    r"enabled|enable|mode|type|types|ttl|duration|timeout|interval|seconds|count|size|"
    r"length|bits|backend|sync|source|selector|provider|policy|format|annotations|labels|"
    r"id|ids|issuer|audience|audiences|expiration|expirationseconds|kind|template|url)$",
    re.I,
)
_TRIVIAL_VALUES = frozenset(
    {"", "true", "false", "yes", "no", "on", "off", "null", "~", "none", "nil", MARKER, '""', "''"}
)

#: Anything that could start a redaction (lower case); text without one passes untouched.
#: Plain substring tests: a regex alternation here would cost more than the whole copy.
_TRIGGERS = (
    "pass",
    "secret",
    "token",
    "key",
    "credential",
    "certificate-data",
    "certificate_data",
    "auth",
    "bearer",
    "private",
    "-----begin",
    "@",
    "akia",
    "asia",
    "abia",
    "acca",
    "eyj",
    "q~",
)


#: Words whose presence in a key makes it a candidate for :func:`is_sensitive_key`.
_KEY_WORDS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "key",
    "credential",
    "certificate-data",
    "certificate_data",
    "certificatedata",
)


def _word_hits(text: str) -> list[tuple[int, int]]:
    """Where key words occur in ``text`` (case-insensitive), in order."""
    low = text.lower()
    hits = []
    for word in _KEY_WORDS:
        at = low.find(word)
        while at >= 0:
            hits.append((at, at + len(word)))
            at = low.find(word, at + 1)
    hits.sort()
    return hits


def _has_trigger(text: str) -> bool:
    low = text.lower()
    return any(word in low for word in _TRIGGERS)


_PEM_INLINE = re.compile(
    r"(-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY)-----)(?P<body>.*?)(-----END (?P=kind)-----)"
)
_PEM_BEGIN = re.compile(r"-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY)-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY-----")
_URL_CREDS = re.compile(r"(?P<pre>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^/\s:@\"']+:)(?P<val>[^/\s@\"']+)@")
_AUTH_HEADER = re.compile(
    r"(?P<pre>authorization[\"']?\s*[:=]\s*\[?[\"']?\s*(?:basic|bearer|token|digest|negotiate)\s+)"
    r"(?P<val>[^\s\"',\]]+)",
    re.I,
)
_BEARER = re.compile(r"(?P<pre>\bbearer\s+)(?P<val>[A-Za-z0-9\-._~+/]{16,}=*)", re.I)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}")
_AWS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\b")
_AZURE_SECRET = re.compile(r"(?<![A-Za-z0-9_~.\-])[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{31,34}")

_KEY = r"[A-Za-z0-9_.\-]*"
#: ``key: value`` as a whole YAML line (value = the rest of the line).
_YAML_LINE = re.compile(
    r"^(?P<ind>[ \t]*(?:-[ \t]+)?)(?P<kq>[\"']?)(?P<key>[A-Za-z0-9_.\-]+)(?P=kq)[ \t]*:"
    r"(?:[ \t]+(?P<val>.*?))?[ \t]*$"
)
#: ``KEY=value`` as a whole env/INI line (value = the rest of the line).
_ENV_LINE = re.compile(
    r"^(?P<pre>[ \t]*(?:export[ \t]+)?(?P<key>[A-Za-z0-9_.\-]+)[ \t]*=[ \t]*)(?P<val>.*)$"
)
#: After a credential key inside a line: closing quote(s), the separator, spaces.
_AFTER_KEY = re.compile(r"(?:\\*[\"'])?[ \t]*(?:=|:(?!//))[ \t]*")
_VALUE_QUOTE = re.compile(r"\\*[\"']")
_BARE_VALUE = re.compile(r"[^\s,;&\"'}\])]+")
_KEY_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_BLOCK_SCALAR = re.compile(r"^[|>][-+0-9]*$")


def is_sensitive_key(key: str) -> bool:
    """True when a key's value is a credential (``password``, ``api-key``, ``AWS_SECRET``...)."""
    return bool(_KEY_TRIGGER.search(key)) and not _KEY_EXEMPT_SUFFIX.search(key.rstrip("_-."))


def _trivial(value: str) -> bool:
    return value.strip().strip("\"'").lower() in _TRIVIAL_VALUES or value.strip() in _TRIVIAL_VALUES


Counts = Counter[str]


class LineRedactor:
    """Redacts text line by line, keeping the state that spans lines (PEM, block scalars)."""

    def __init__(self, counts: Counts) -> None:
        self.counts = counts
        self._in_pem = False
        self._block_indent: int | None = None
        self._block_marked = False

    @property
    def idle(self) -> bool:
        """No multi-line construct is open: lines without a trigger pass as they are."""
        return not self._in_pem and self._block_indent is None

    def line(self, text: str) -> str:
        """Redact one line (without its line ending)."""
        if self._in_pem:
            end = _PEM_END.search(text)
            if end is None:
                return ""
            self._in_pem = False
            return text[end.start() :]
        if self._block_indent is not None:
            if not text.strip():
                return text
            indent = len(text) - len(text.lstrip(" \t"))
            if indent > self._block_indent:
                if self._block_marked:
                    return ""
                self._block_marked = True
                return text[:indent] + MARKER
            self._block_indent = None
        if not _has_trigger(text):
            return text
        return self._rules(text)

    def _count(self, rule: str) -> None:
        self.counts[rule] += 1

    def _sub(self, pattern: re.Pattern[str], rule: str, text: str) -> str:
        def repl(m: re.Match[str]) -> str:
            self._count(rule)
            return m.group("pre") + MARKER

        return pattern.sub(repl, text)

    def _rules(self, text: str) -> str:
        # PEM private keys: whole block on this line, or the start of a multi-line block.
        def pem(m: re.Match[str]) -> str:
            self._count("private-key")
            return m.group(1) + MARKER + m.group(4)

        if "-----BEGIN" not in text:
            return self._plain_rules(text)
        text = _PEM_INLINE.sub(pem, text)
        begins = list(_PEM_BEGIN.finditer(text))
        begin = begins[-1] if begins else None
        if begin is not None and _PEM_END.search(text, begin.end()) is None:
            self._count("private-key")
            self._in_pem = True
            return text[: begin.end()] + (MARKER if text[begin.end() :].strip() else "")
        return self._plain_rules(text)

    def _plain_rules(self, text: str) -> str:
        low = text.lower()
        if "@" in text and "://" in text:
            text = self._sub(_URL_CREDS, "url-credentials", text)
        if "authorization" in low:
            text = self._sub(_AUTH_HEADER, "authorization-header", text)
        if "bearer" in low:
            text = self._sub(_BEARER, "bearer-token", text)
        if "eyJ" in text:
            text = self._plain(_JWT, "jwt", text)
        if "AKIA" in text or "ASIA" in text or "ABIA" in text or "ACCA" in text:
            text = self._plain(_AWS_KEY_ID, "aws-access-key-id", text)
        if "Q~" in text:
            text = self._plain(_AZURE_SECRET, "azure-client-secret", text)
        return self._pairs(text)

    def _plain(self, pattern: re.Pattern[str], rule: str, text: str) -> str:
        def repl(_m: re.Match[str]) -> str:
            self._count(rule)
            return MARKER

        return pattern.sub(repl, text)

    def _pairs(self, text: str) -> str:
        yaml_line = _YAML_LINE.match(text)
        if yaml_line and is_sensitive_key(yaml_line.group("key")):
            value = yaml_line.group("val") or ""
            if _BLOCK_SCALAR.match(value):
                self._block_indent = len(yaml_line.group("ind"))
                self._block_marked = False
                self._count("credential-value")
                return text
            if value and not _trivial(value) and MARKER not in value:
                self._count("credential-value")
                quote = value[0] if value[0] in "\"'" and value[-1:] == value[0] else ""
                return text[: yaml_line.start("val")] + quote + MARKER + quote
            return text
        env_line = _ENV_LINE.match(text)
        if env_line and is_sensitive_key(env_line.group("key")):
            value = env_line.group("val").rstrip()
            if not _trivial(value) and MARKER not in value:
                self._count("credential-value")
                return env_line.group("pre") + MARKER
            return text
        return self._inline_pairs(text)

    def _inline_pairs(self, text: str) -> str:
        """``key=value``, ``"key": "value"``, ``\\"key\\":\\"value\\"`` anywhere in a line:
        found from the credential words outward, which is much faster than a regex trying
        every position of every log line."""
        out: list[str] = []
        pos = 0
        for ks, ke in _word_hits(text):
            if ks < pos:
                continue
            while ks > pos and text[ks - 1] in _KEY_CHARS:
                ks -= 1
            while ke < len(text) and text[ke] in _KEY_CHARS:
                ke += 1
            if not is_sensitive_key(text[ks:ke].lstrip("-")):
                continue
            sep = _AFTER_KEY.match(text, ke)
            if sep is None:
                continue
            quote = _VALUE_QUOTE.match(text, sep.end())
            if quote is not None:
                vs = quote.end()
                ve = text.find(quote.group(0), vs)
                ve = len(text) if ve < 0 else ve
            else:
                bare = _BARE_VALUE.match(text, sep.end())
                if bare is None:
                    continue
                vs, ve = bare.start(), bare.end()
            value = text[vs:ve]
            if not value or _trivial(value) or value == MARKER:
                continue
            self._count("credential-value")
            out += [text[pos:vs], MARKER]
            pos = ve
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)


class StreamRedactor:
    """Redacts a byte stream (a log, command output) chunk by chunk in bounded memory.

    Complete lines are redacted as they arrive; a line longer than ``max_line`` is treated
    as complete so one huge line cannot grow the buffer without bound.
    """

    def __init__(self, counts: Counts, *, max_line: int = 1 << 20) -> None:
        self.lines = LineRedactor(counts)
        self._pending = b""
        self._max_line = max_line

    def feed(self, chunk: bytes) -> bytes:
        """Redact what of ``chunk`` completes lines; keep the rest for the next call."""
        data = self._pending + chunk
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) < self._max_line:
            self._pending = data
            return b""
        if cut == 0:
            cut = len(data)
        self._pending = data[cut:]
        return self._block(data[:cut])

    def finish(self) -> bytes:
        """Redact whatever is left (a last line without a newline)."""
        data, self._pending = self._pending, b""
        return self._block(data) if data else b""

    def _block(self, data: bytes) -> bytes:
        text = data.decode("utf-8", "surrogateescape")
        if self.lines.idle and not _has_trigger(text):
            return data
        out: list[str] = []
        for raw in text.splitlines(keepends=True):
            body = raw.rstrip("\r\n")
            ending = raw[len(body) :]
            redacted = self.lines.line(body)
            if redacted == "" and body != "":
                continue  # a line folded into the marker of a PEM body or block scalar
            out.append(redacted + ending)
        return "".join(out).encode("utf-8", "surrogateescape")


def redact_text(text: str, counts: Counts) -> str:
    """Redact a whole text (a ConfigMap value, an annotation, command output)."""
    stream = StreamRedactor(counts)
    data = text.encode("utf-8", "surrogateescape")
    out = stream.feed(data) + stream.finish()
    return out.decode("utf-8", "surrogateescape")


def redact_chunks(chunks: Iterable[bytes], counts: Counts) -> Iterator[bytes]:
    """Redact a stream of byte chunks."""
    stream = StreamRedactor(counts)
    for chunk in chunks:
        out = stream.feed(chunk)
        if out:
            yield out
    tail = stream.finish()
    if tail:
        yield tail


def redact_object(obj: Any, counts: Counts) -> Any:
    """A copy of ``obj`` (dicts, lists, scalars) with credentials replaced."""
    return _walk(obj, counts, sensitive=False)


def _walk(obj: Any, counts: Counts, *, sensitive: bool) -> Any:
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        env_name = obj.get("name")
        env_style = isinstance(env_name, str) and is_sensitive_key(env_name)
        for key, value in obj.items():
            key_sensitive = isinstance(key, str) and is_sensitive_key(key)
            if env_style and key == "value":
                key_sensitive = True
            out[key] = _walk(value, counts, sensitive=key_sensitive)
        return out
    if isinstance(obj, list):
        return [_walk(item, counts, sensitive=sensitive) for item in obj]
    if isinstance(obj, str):
        if sensitive and not _trivial(obj):
            counts["credential-value"] += 1
            return MARKER
        return redact_text(obj, counts) if _has_trigger(obj) else obj
    if sensitive and isinstance(obj, int | float) and not isinstance(obj, bool):
        counts["credential-value"] += 1
        return MARKER
    return obj


def secret_summary(secret: dict[str, Any]) -> dict[str, Any]:
    """A Secret reduced to what a sysdump may keep: its metadata, type and key names."""
    meta = dict(secret.get("metadata") or {})
    meta.pop("managedFields", None)
    annotations = dict(meta.get("annotations") or {})
    # kubectl's last-applied annotation carries the whole Secret, data included.
    annotations.pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    keys = sorted(set(secret.get("data") or {}) | set(secret.get("stringData") or {}))
    return {
        "apiVersion": secret.get("apiVersion", "v1"),
        "kind": "Secret",
        "metadata": meta,
        "type": secret.get("type"),
        "keys": keys,
    }


TextFilter = Callable[[str], str]
