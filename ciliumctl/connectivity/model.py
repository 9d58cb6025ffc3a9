"""The data of a connectivity run: expected results, peers, actions and their outcomes.

The names follow cilium-cli's (``ResultOK``, ``ResultDefaultDenyIngressDrop``...) so that a
test's expectations read the same as upstream's, but the types are our own plain data.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: curl's exit codes that expectations name.
EXIT_CURL_HTTP_ERROR = 22
EXIT_CURL_TIMEOUT = 28
#: "any non-zero exit code" in an expectation.
ANY_ERROR = -1

#: The drop reasons the agent reports for policy drops (cilium's drop reason strings).
REASON_POLICY_DENIED = "Policy denied"
REASON_POLICY_DENYLIST = "Policy denied by denylist"

CURL_EXIT_MEANINGS = {
    0: "success",
    6: "could not resolve host",
    7: "connection refused or no route",
    22: "HTTP error status",
    28: "timed out",
    35: "TLS handshake failed",
    52: "empty reply from server",
    56: "connection reset",
}


class Family(enum.StrEnum):
    """An IP family as cilium-cli names it in action names (``curl-ipv4-0``)."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"
    ANY = "any"


@dataclass(frozen=True)
class Result:
    """What one side (egress at the source, ingress at the destination) should see."""

    name: str
    drop: bool = False
    none: bool = False  # no expectation at this side
    exit_code: int = 0  # expected exit code when dropped; ANY_ERROR for any non-zero
    egress_drop: bool = False
    ingress_drop: bool = False
    reasons: tuple[str, ...] = ()  # acceptable drop reasons; empty: any reason

    def __str__(self) -> str:
        return self.name


OK = Result("OK")
NONE = Result("None", none=True)
DROP = Result("Drop", drop=True, exit_code=ANY_ERROR)
DROP_CURL_TIMEOUT = Result("Drop(curl timeout)", drop=True, exit_code=EXIT_CURL_TIMEOUT)
POLICY_DENY_EGRESS_DROP = Result(
    "PolicyDenyEgressDrop",
    drop=True,
    exit_code=ANY_ERROR,
    egress_drop=True,
    reasons=(REASON_POLICY_DENYLIST,),
)
DEFAULT_DENY_EGRESS_DROP = Result(
    "DefaultDenyEgressDrop",
    drop=True,
    exit_code=ANY_ERROR,
    egress_drop=True,
    reasons=(REASON_POLICY_DENIED,),
)
POLICY_DENY_INGRESS_DROP = Result(
    "PolicyDenyIngressDrop",
    drop=True,
    exit_code=ANY_ERROR,
    ingress_drop=True,
    reasons=(REASON_POLICY_DENYLIST,),
)
DEFAULT_DENY_INGRESS_DROP = Result(
    "DefaultDenyIngressDrop",
    drop=True,
    exit_code=ANY_ERROR,
    ingress_drop=True,
    reasons=(REASON_POLICY_DENIED,),
)


@dataclass(frozen=True)
class Expectation:
    """The egress and ingress results of one action, and what the command must do."""

    egress: Result = OK
    ingress: Result = OK

    @property
    def success(self) -> bool:
        """True when the command is expected to succeed (nothing is dropped)."""
        return not (self.egress.drop or self.ingress.drop)

    @property
    def exit_code(self) -> int:
        """The exit code the command must end with (ANY_ERROR: any non-zero)."""
        if self.egress.drop:
            return self.egress.exit_code
        if self.ingress.drop:
            return self.ingress.exit_code
        return 0

    def accepts(self, code: int) -> bool:
        """Does exit code ``code`` meet the expectation?"""
        want = self.exit_code
        if want == ANY_ERROR:
            return code != 0
        return code == want

    def describe(self) -> str:
        """A short human phrase: 'success' or 'egress drop (curl exit 28)'."""
        if self.success:
            return "success (exit 0)"
        side = "egress" if self.egress.drop else "ingress"
        result = self.egress if self.egress.drop else self.ingress
        code = "any non-zero exit" if result.exit_code == ANY_ERROR else f"exit {result.exit_code}"
        why = f", reason {' or '.join(result.reasons)}" if result.reasons else ""
        return f"{side} drop ({code}{why})"


def _frozen(labels: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(labels or {}))


@dataclass(frozen=True)
class Peer:
    """A source or destination: a pod, a Service, a node or an external endpoint."""

    name: str  # "cilium-test-1/client-abc" or "one.one.one.one.-http"
    kind: str  # pod | service | node | external | host-netns
    addresses: Mapping[Family, str] = field(default_factory=_frozen)  # type: ignore[arg-type]
    port: int = 0
    scheme: str = ""
    path: str = ""
    labels: Mapping[str, str] = field(default_factory=_frozen)
    node: str = ""  # the node a pod runs on
    pod: str = ""  # "namespace/name" when the peer is a pod
    container: str = ""

    def has_label(self, key: str, value: str) -> bool:
        """True when the peer carries label ``key=value``."""
        return self.labels.get(key) == value

    def address(self, family: Family) -> str:
        """The address for ``family`` (a DNS name for services and external names)."""
        return self.addresses.get(family) or self.addresses.get(Family.ANY, "")

    def display(self, family: Family) -> str:
        """cilium-cli's peer text: ``name (addr:port)``."""
        addr = self.address(family)
        where = f"{addr}:{self.port}" if self.port else addr
        return f"{self.name} ({where})"


@dataclass(frozen=True)
class Action:
    """One command with its expected outcome: a curl or ping from a source pod."""

    test: str
    scenario: str
    name: str
    src: Peer
    dst: Peer
    family: Family
    command: tuple[str, ...]
    expectation: Expectation
    check: str = ""  # agent checks: the scenario whose evaluator reads the output

    @property
    def scenario_name(self) -> str:
        """``test/scenario`` as cilium-cli prints it."""
        return f"{self.test}/{self.scenario}"

    def __str__(self) -> str:
        if self.check:
            return f"{self.scenario_name}/{self.name}: {self.src.name}"
        return (
            f"{self.scenario_name}/{self.name}: {self.src.display(self.family)} -> "
            f"{self.dst.display(self.family)}"
        )


@dataclass(frozen=True)
class DropEvent:
    """A drop or policy-verdict event from an agent's monitor, with where it was seen."""

    kind: str  # drop | policy-verdict
    reason: str  # drop reason text, or the verdict ("deny", "allow")
    node: str
    agent: str  # namespace/pod of the agent that reported it
    src_ip: str = ""
    dst_ip: str = ""
    dst_port: int = 0
    direction: str = ""  # ingress | egress | "" when the event does not say
    time: float = 0.0

    def describe(self) -> str:
        """One line for reports."""
        flow = f"{self.src_ip} -> {self.dst_ip}" + (f":{self.dst_port}" if self.dst_port else "")
        side = f" {self.direction}" if self.direction else ""
        return f"{self.kind}{side} '{self.reason}' {flow} on node {self.node} (agent {self.agent})"


@dataclass
class ActionOutcome:
    """What happened when an action ran, and whether it met its expectation."""

    action: Action
    exit_code: int | None  # None: the command could not run at all
    stdout: str = ""
    stderr: str = ""
    duration: float = 0.0
    passed: bool = False
    failure: str = ""  # why it failed, for the report
    flow_warnings: list[str] = field(default_factory=list)
    drops: list[DropEvent] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)

    def seen(self) -> str:
        """What the command did, in words."""
        if self.exit_code is None:
            return "command could not run"
        if self.exit_code == 0:
            return "success (exit 0)"
        meaning = ""
        if self.action.command and self.action.command[0] == "curl":
            meaning = CURL_EXIT_MEANINGS.get(self.exit_code, "")
        elif self.action.command and self.action.command[0] == "ping":
            meaning = "no reply" if self.exit_code == 1 else ""
        return f"exit {self.exit_code}" + (f" ({meaning})" if meaning else "")
