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


def test_entries_are_searched_in_test_slash_scenario_as_cilium_cli_does() -> None:
    assert names(["^no-policies/"]) == ["no-policies"]
    assert set(names(["no-policies"])) == {
        "no-policies",
        "no-policies-extra",
        "no-policies-from-outside",
    }
    # as upstream: '$' after the test name matches no 'test/scenario' name
    assert names(["^no-policies$"]) == []
    # a scenario name selects every test that has that scenario
    assert set(names(["/pod-to-world$"])) >= {"no-policies", "to-entities-world"}
    assert "client-ingress" not in names(["/pod-to-world$"])


def test_bang_excludes_and_combines_with_includes() -> None:
    got = names(["^client-egress", "!knp", "!port-range", "!l7|tls|to-echo|cidr"])
    assert got == ["client-egress", "client-egress-expression"]
    assert names(["!.*"]) == []
    assert "all-ingress-deny-knp" not in names(["!-knp/"])
    assert "all-ingress-deny" in names(["!-knp/"])
    # an exclusion that ends the scenario name away excludes nothing, as upstream
    assert "all-ingress-deny-knp" in names(["!-knp$"])


def test_comma_separated_entries() -> None:
    assert names(["^health/,^cluster-entity/"]) == ["cluster-entity", "health"]


def test_scenario_narrowing() -> None:
    sel = selection.parse(["no-policies/pod-to-pod$", "!no-policies/pod-to-cidr"])
    assert sel.test_selected("no-policies", ["pod-to-pod", "pod-to-world"])
    assert sel.scenario_selected("no-policies", "pod-to-pod")
    assert not sel.scenario_selected("no-policies", "pod-to-world")
    assert not sel.test_selected("client-ingress", ["pod-to-pod"])
    sel = selection.parse(["!/pod-to-cidr"])
    assert sel.test_selected("all-entities-deny", ["pod-to-pod", "pod-to-cidr"])
    assert not sel.scenario_selected("all-entities-deny", "pod-to-cidr")
    assert sel.scenario_selected("all-entities-deny", "pod-to-pod")
    # a test is skipped when every scenario of it is excluded
    assert not sel.test_selected("to-cidr-external", ["pod-to-cidr"])


def test_bad_regex_is_a_usage_error_naming_it() -> None:
    with pytest.raises(UsageError, match=r"invalid --test '\(no'"):
        selection.parse(["(no"])


def test_entry_matching_nothing_is_refused_with_how_entries_match() -> None:
    from ciliumctl.connectivity.params import Params

    with pytest.raises(UsageError, match="nosuchtest matches no test") as err:
        runner.validate_params(Params(tests=["nosuchtest"]))
    assert "'test/scenario' names" in str(err.value.hint)
    with pytest.raises(UsageError, match=r"\^no-policies\$ matches no test"):
        runner.validate_params(Params(tests=["^no-policies$"]))
    # names of upstream tests that are not implemented are known names
    runner.validate_params(Params(tests=["to-fqdns"]))
    runner.validate_params(Params(tests=["^to-fqdns/"]))
