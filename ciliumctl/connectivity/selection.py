"""``--test``: regular expressions selecting scenarios as cilium-cli does.

Each entry is a regex searched in a scenario's full name, ``test/scenario`` (for example
``no-policies/pod-to-pod``); a leading ``!`` excludes instead. A scenario runs when no
exclusion matches it and, if there are inclusive entries, one of them does; a test runs
when one of its scenarios does. So ``no-policies/`` selects that test (and every test
whose name ends in ``no-policies``), ``^no-policies/`` exactly that one, ``/pod-to-world``
that scenario in every test, and ``!-knp/`` excludes the KNP variants.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ciliumctl.errors import UsageError


@dataclass(frozen=True)
class _Rule:
    negate: bool
    regex: re.Pattern[str]
    text: str


@dataclass(frozen=True)
class Selection:
    """The compiled ``--test`` entries."""

    rules: tuple[_Rule, ...]

    def scenario_selected(self, test: str, scenario: str) -> bool:
        """Does scenario ``test/scenario`` run?"""
        full = f"{test}/{scenario}"
        if any(r.negate and r.regex.search(full) for r in self.rules):
            return False
        includes = [r for r in self.rules if not r.negate]
        return not includes or any(r.regex.search(full) for r in includes)

    def test_selected(self, name: str, scenarios: Iterable[str] = ("",)) -> bool:
        """Does test ``name`` run: does one of its ``scenarios`` (its name alone, ``name/``,
        for a test whose scenarios are not known here)?"""
        return any(self.scenario_selected(name, s) for s in scenarios)

    def matches_nothing(self, full_names: list[str]) -> list[str]:
        """The inclusive entries that match none of ``full_names`` (``test/scenario``)."""
        return [
            r.text
            for r in self.rules
            if not r.negate and not any(r.regex.search(n) for n in full_names)
        ]


def parse(entries: list[str]) -> Selection:
    """Compile ``--test`` values (comma-separated too); a malformed regex is a usage error
    naming it."""
    rules = []
    for raw in entries:
        for text in (part.strip() for part in raw.split(",")):
            if not text:
                continue
            negate = text.startswith("!")
            try:
                regex = re.compile(text[1:] if negate else text)
            except re.error as exc:
                raise UsageError(
                    f"invalid --test {text!r}: {exc}",
                    "use a regular expression such as 'no-policies/' or '!-knp/'",
                ) from exc
            rules.append(_Rule(negate, regex, text))
    return Selection(tuple(rules))
