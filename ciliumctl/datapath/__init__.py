"""The agent's only door to the kernel: eBPF programs and maps (bcc), netlink (pyroute2).

Nothing here imports Kubernetes; :mod:`ciliumctl.datapath.model` is the data the agent hands
over, :class:`Datapath` (``ciliumctl.datapath.datapath``) the facade it calls. Loaded lazily so
importing the model stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ciliumctl.datapath.datapath import Datapath
    from ciliumctl.datapath.errors import DatapathError, PolicyTooLargeError, VerifierError
    from ciliumctl.datapath.events import Event, EventReader

__all__ = [
    "Datapath",
    "DatapathError",
    "Event",
    "EventReader",
    "PolicyTooLargeError",
    "VerifierError",
]


def __getattr__(name: str) -> Any:
    if name == "Datapath":
        from ciliumctl.datapath.datapath import Datapath

        return Datapath
    if name in ("DatapathError", "PolicyTooLargeError", "VerifierError"):
        from ciliumctl.datapath import errors

        return getattr(errors, name)
    if name in ("Event", "EventReader"):
        from ciliumctl.datapath import events

        return getattr(events, name)
    raise AttributeError(name)
