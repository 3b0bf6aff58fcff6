"""A VN instance outlives its last endpoint on a host by a hold time.

TESs come and go: a VM reboots and attaches again a second later, a bench attaches and
terminates thousands a second. Without a hold, each last-leaves/first-arrives pair deletes
and rebuilds the host's bridge, VXLAN device and rules, and every first TES waits for them.
The hold is the controller's memory of when each instance lost its last endpoint; the
computation stays pure (compute_tables takes the held set).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from tenet.compute.tables import HostTables
from tenet.store.records import TablesHead

Instance = tuple[str, str]  # (host, VN)
HOLD = 2.0  # seconds: longer than a reboot's re-attach, short enough that cleanup is prompt


@dataclass
class Hold:
    seconds: float = HOLD
    by_vn: dict[str, frozenset[str]] = field(default_factory=dict)  # VN -> the hosts its endpoints need
    until: dict[Instance, float] = field(default_factory=dict)

    @property
    def present(self) -> frozenset[Instance]:
        return frozenset((h, vn) for vn, hosts in self.by_vn.items() for h in hosts)

    def update(self, now: float, present: frozenset[Instance]) -> frozenset[Instance]:
        """The instances to keep although no endpoint needs them (`present` are needed)."""
        by_vn: dict[str, set[str]] = {vn: set() for vn in self.by_vn}
        for h, vn in present:
            by_vn.setdefault(vn, set()).add(h)
        return self.update_vns(now, {vn: frozenset(hosts) for vn, hosts in by_vn.items()})

    def update_vns(self, now: float, needed: Mapping[str, frozenset[str]]) -> frozenset[Instance]:
        """As update(), told only the VNs whose hosts may have changed (and their hosts now):
        a pass that changed one VN costs that VN, not every instance of the fabric."""
        for vn, hosts in needed.items():
            before = self.by_vn.get(vn, frozenset())
            for h in before - hosts:
                self.until[(h, vn)] = now + self.seconds
            for h in hosts - before:
                self.until.pop((h, vn), None)
            if hosts:
                self.by_vn[vn] = hosts
            else:
                self.by_vn.pop(vn, None)
        self.until = {i: t for i, t in self.until.items() if t > now}
        return frozenset(self.until)

    def next_due(self) -> float | None:
        """When the earliest held instance is to go (the controller recomputes then)."""
        return min(self.until.values(), default=None)


def carried_over(seconds: float, published: Iterable[HostTables | TablesHead]) -> Hold:
    """A new leader's hold: the instances its predecessor published count as present, so one
    that lost its last endpoint just before the failover is held from now, not dropped at once
    (which would reprogram hosts whose tables had no reason to change)."""
    by_vn: dict[str, set[str]] = {}
    for t in published:
        for vn in t.vns:
            by_vn.setdefault(vn.vn, set()).add(t.host)
    return Hold(seconds, by_vn={vn: frozenset(hosts) for vn, hosts in by_vn.items()})
