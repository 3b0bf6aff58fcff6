"""A VN instance outlives its last endpoint on a host by a hold time.

TESs come and go: a VM reboots and attaches again a second later, a bench attaches and
terminates thousands a second. Without a hold, each last-leaves/first-arrives pair deletes
and rebuilds the host's bridge, VXLAN device and rules, and every first TES waits for them.
The hold is the controller's memory of when each instance lost its last endpoint; the
computation stays pure (compute_tables takes the held set).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from tenet.compute.tables import HostTables
from tenet.store.records import TablesHead

Instance = tuple[str, str]  # (host, VN)
HOLD = 2.0  # seconds: longer than a reboot's re-attach, short enough that cleanup is prompt


@dataclass
class Hold:
    seconds: float = HOLD
    present: frozenset[Instance] = frozenset()
    until: dict[Instance, float] = field(default_factory=dict)

    def update(self, now: float, present: frozenset[Instance]) -> frozenset[Instance]:
        """The instances to keep although no endpoint needs them (`present` are needed)."""
        for gone in self.present - present:
            self.until[gone] = now + self.seconds
        self.until = {i: t for i, t in self.until.items() if t > now and i not in present}
        self.present = present
        return frozenset(self.until)

    def next_due(self) -> float | None:
        """When the earliest held instance is to go (the controller recomputes then)."""
        return min(self.until.values(), default=None)


def carried_over(seconds: float, published: Iterable[HostTables | TablesHead]) -> Hold:
    """A new leader's hold: the instances its predecessor published count as present, so one
    that lost its last endpoint just before the failover is held from now, not dropped at once
    (which would reprogram hosts whose tables had no reason to change)."""
    return Hold(seconds, present=frozenset((t.host, vn.vn) for t in published for vn in t.vns))
