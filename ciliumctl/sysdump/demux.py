"""Several commands in one exec: the shell script and the splitter of its output.

Each exec through the API server costs a websocket, a proxied connection and a process in
the pod; an agent's dozen ``cilium-dbg`` dumps therefore run in one ``sh -c`` that prints a
marker line after each command (its exit code and a timestamp). The splitter cuts the
stdout stream at those markers as it arrives, so each command's output is streamed into its
own archive entry and no output is held whole.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Callable

#: Longest marker line the splitter expects ("\n<boundary> end <i> <rc> <ns timestamp>\n").
_MARKER_SLACK = 96


def new_boundary() -> str:
    """A marker word no command output contains by chance."""
    return f"sysdump-{uuid.uuid4().hex}"


def batch_script(commands: list[list[str]]) -> str:
    """A POSIX sh script running ``commands`` in order; the boundary is its ``$1``.

    After a start marker, every command is followed by ``\\n<B> end <i> <exit code> <ns>`` on
    stdout and ``\\n<B> end <i>`` on stderr. A failing command does not stop the others.
    """
    lines = ['B="$1"', 'printf \'\\n%s start %s\\n\' "$B" "$(date +%s%N)"']
    for i, argv in enumerate(commands):
        lines.append(
            f"{shlex.join(argv)}; rc=$?; "
            f'printf \'\\n%s end {i} %s %s\\n\' "$B" "$rc" "$(date +%s%N)"; '
            f"printf '\\n%s end {i}\\n' \"$B\" >&2"
        )
    return "\n".join(lines) + "\n"


class SectionSplitter:
    """Splits a byte stream at ``\\n<boundary> <fields>\\n`` marker lines.

    ``on_data(section, chunk)`` receives the bytes of section 0, 1, ... (section 0 starts at
    the first marker; bytes before it are dropped); ``on_marker(fields)`` each marker's words.
    """

    def __init__(
        self,
        boundary: str,
        on_data: Callable[[int, bytes], None],
        on_marker: Callable[[list[str]], None],
    ) -> None:
        self._needle = b"\n" + boundary.encode() + b" "
        self._on_data = on_data
        self._on_marker = on_marker
        self._buf = b""
        self.section = -1

    def feed(self, chunk: bytes) -> None:
        """Consume a chunk; data up to a possible partial marker is passed on at once."""
        buf = self._buf + chunk
        while True:
            at = buf.find(self._needle)
            if at < 0:
                keep = len(self._needle) + _MARKER_SLACK
                if len(buf) > keep:
                    self._emit(buf[:-keep])
                    buf = buf[-keep:]
                break
            end = buf.find(b"\n", at + 1)
            if end < 0:
                self._emit(buf[:at])
                buf = buf[at:]
                break
            self._emit(buf[:at])
            fields = buf[at + len(self._needle) : end].decode("ascii", "replace").split()
            self.section += 1
            self._on_marker(fields)
            buf = buf[end + 1 :]
        self._buf = buf

    def finish(self) -> None:
        """The stream ended: pass on what is left (an unterminated last section)."""
        if self._buf:
            self._emit(self._buf)
            self._buf = b""

    def _emit(self, data: bytes) -> None:
        if data and self.section >= 0:
            self._on_data(self.section, data)


def split_stderr(stderr: bytes, boundary: str, count: int) -> list[str]:
    """Each command's stderr, from the stderr stream of a :func:`batch_script` run."""
    parts = [b""] * count
    needle = b"\n" + boundary.encode() + b" end "
    index, rest = 0, stderr
    while index < count:
        at = rest.find(needle)
        if at < 0:
            parts[index] = rest
            break
        parts[index] = rest[:at]
        eol = rest.find(b"\n", at + 1)
        rest = rest[eol + 1 :] if eol >= 0 else b""
        index += 1
    return [p.decode("utf-8", "replace").strip() for p in parts]
