import pytest

from ciliumctl.connectivity import catalog, runner, selection
from ciliumctl.errors import UsageError


def names(entries: list[str]) -> list[str]:
    return [n for n, _ in runner.plan(selection.parse(entries))]


def test_no_entries_selects_every_test_in_upstream_order() -> None:
    got = names([])
    assert got[0] == "no-policies"
    assert got[-2:] == ["no-unexpected-packet-drops", "check-log-errors"]
    assert len(got) == len(catalog.IMPLEMENTED) + len(catalog.NOT_IMPLEMENTED)


def test_regex_includes_by_search() -> None:
    assert names(["^no-policies$"]) == ["no-policies"]
    assert set(names(["no-policies"])) == {
        "no-policies",
        "no-policies-extra",
        "no-policies-from-outside",
    }


def test_bang_excludes_and_combines_with_includes() -> None:
    got = names(["client-egress", "!knp", "!port-range", "!l7|tls|to-echo|cidr"])
    assert got == ["client-egress", "client-egress-expression"]
    everything_but = names(["!.*"])
    assert everything_but == []
    assert "all-ingress-deny-knp" not in names(["!-knp$"])
    assert "all-ingress-deny" in names(["!-knp$"])


def test_comma_separated_entries() -> None:
    assert names(["^health$,^cluster-entity$"]) == ["cluster-entity", "health"]


def test_scenario_narrowing() -> None:
    sel = selection.parse(["no-policies/pod-to-pod$", "!no-policies/pod-to-cidr"])
    assert sel.test_selected("no-policies")
    assert sel.scenario_selected("no-policies", "pod-to-pod")
    assert not sel.scenario_selected("no-policies", "pod-to-world")
    sel = selection.parse(["!/pod-to-cidr"])
    assert sel.test_selected("all-entities-deny")
    assert not sel.scenario_selected("all-entities-deny", "pod-to-cidr")
    assert sel.scenario_selected("all-entities-deny", "pod-to-pod")


def test_bad_regex_is_a_usage_error_naming_it() -> None:
    with pytest.raises(UsageError, match=r"invalid --test '\(no'"):
        selection.parse(["(no"])


def test_entry_matching_nothing_is_refused() -> None:
    from ciliumctl.connectivity.params import Params

    with pytest.raises(UsageError, match="nosuchtest matches no test"):
        runner.validate_params(Params(tests=["nosuchtest"]))
    # names of upstream tests that are not implemented are known names
    runner.validate_params(Params(tests=["to-fqdns"]))
