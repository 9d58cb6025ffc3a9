"""netlink.session: one socket per namespace for a block of calls; delete_link of a missing
link in our own namespace needs no socket at all."""

from __future__ import annotations

from typing import Any

import pytest

from ciliumctl.datapath import netlink


class FakeSocket:
    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[FakeSocket]:
    sockets: list[FakeSocket] = []

    def fake_open(netns: str | None) -> Any:
        sockets.append(FakeSocket(netns))
        return sockets[-1]

    monkeypatch.setattr(netlink, "_open", fake_open)
    return sockets


def test_a_session_shares_one_socket_per_namespace(opened: list[FakeSocket]) -> None:
    with netlink.session(None, "pod", None):
        with netlink.ipr() as a, netlink.ipr("pod") as b, netlink.ipr() as c:
            assert a is c and a is not b
        # nested: reuses the outer one, closes nothing
        with netlink.session("pod"), netlink.ipr("pod") as d:
            assert d is b
        assert not any(s.closed for s in opened)
        with netlink.ipr("other") as e:  # outside the session's namespaces: its own socket
            pass
        assert e.closed
    assert [s.netns for s in opened] == [None, "pod", "other"]
    assert all(s.closed for s in opened)
    with netlink.ipr() as f:
        assert f is not a  # the session is over


def test_without_a_session_each_call_has_its_own_socket(opened: list[FakeSocket]) -> None:
    with netlink.ipr("pod") as a:
        pass
    with netlink.ipr("pod") as b:
        pass
    assert a is not b and a.closed and b.closed


def test_deleting_a_missing_link_opens_no_socket(opened: list[FakeSocket]) -> None:
    netlink.delete_link("lxc-not-here0")
    assert opened == []
