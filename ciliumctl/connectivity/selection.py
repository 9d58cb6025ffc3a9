"""``--test``: regular expressions selecting tests as cilium-cli does.

Each entry is a regex searched in the test name; a leading ``!`` excludes instead. An entry
``test/scenario`` (or ``/scenario`` for any test) narrows to scenarios of the matching
tests. With no inclusive entry, every test is selected except the excluded ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ciliumctl.errors import UsageError


@dataclass(frozen=True)
class _Rule:
    negate: bool
    test: re.Pattern[str]
    scenario: re.Pattern[str] | None
    text: str


@dataclass(frozen=True)
class Selection:
    """The compiled ``--test`` entries."""

    rules: tuple[_Rule, ...]

    @property
    def _includes(self) -> list[_Rule]:
        return [r for r in self.rules if not r.negate]

    def test_selected(self, name: str) -> bool:
        """Is test ``name`` to run (before feature checks)?"""
        for rule in self.rules:
            if rule.negate and rule.scenario is None and rule.test.search(name):
                return False
        includes = self._includes
        return not includes or any(r.test.search(name) for r in includes)

    def scenario_selected(self, test: str, scenario: str) -> bool:
        """Is scenario ``scenario`` of selected test ``test`` to run?"""
        for rule in self.rules:
            if (
                rule.negate
                and rule.scenario is not None
                and rule.test.search(test)
                and rule.scenario.search(scenario)
            ):
                return False
        narrowing = [r for r in self._includes if r.scenario is not None and r.test.search(test)]
        if not narrowing:
            return True
        return any(r.scenario is not None and r.scenario.search(scenario) for r in narrowing)

    def matches_nothing(self, names: list[str]) -> list[str]:
        """The inclusive entries that match none of ``names`` (to tell the user)."""
        return [r.text for r in self._includes if not any(r.test.search(n) for n in names)]


def parse(entries: list[str]) -> Selection:
    """Compile ``--test`` values; a malformed regex is a usage error naming it."""
    rules = []
    for raw in entries:
        for text in (part.strip() for part in raw.split(",")):
            if not text:
                continue
            negate = text.startswith("!")
            body = text[1:] if negate else text
            test_part, slash, scenario_part = body.partition("/")
            try:
                test_re = re.compile(test_part)
                scenario_re = re.compile(scenario_part) if slash else None
            except re.error as exc:
                raise UsageError(
                    f"invalid --test {text!r}: {exc}",
                    "use a regular expression such as 'no-policies' or '!-knp$'",
                ) from exc
            rules.append(_Rule(negate, test_re, scenario_re, text))
    return Selection(tuple(rules))
