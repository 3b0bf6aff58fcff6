"""Which registered hosts are down: their Alive key has been gone for longer than a grace.

A host whose agent stopped renewing its lease is shown down at once (`tenet hosts`), but its
VNs' peers keep sending to it for GRACE more seconds: an agent restarting, or a store member
failing over, must not make every peer reprogram twice. After the grace, the host's
endpoints leave every peer's tables and its own tables are left as they were published, so
an agent that comes back finds its last state and re-registers without touching traffic.

Hosts that never registered (declared in the fabric, served by an agent that writes no
chassis) have no liveness and are never down. The controller's memory of when a host went
is its own: a new leader starts every clock afresh (at most one more grace).
"""
from __future__ import annotations

from dataclasses import dataclass, field

GRACE = 10.0  # seconds after the lease lapsed (its TTL: the agent's lease_ttl, 5 s by default)


@dataclass
class Liveness:
    grace: float = GRACE
    gone_since: dict[str, float] = field(default_factory=dict)
    now: float = float("-inf")  # of the last update

    def update(self, now: float, registered: frozenset[str], alive: frozenset[str]) -> frozenset[str]:
        """The down hosts: registered, not alive, for longer than the grace."""
        self.now = now
        missing = registered - alive
        self.gone_since = {h: self.gone_since.get(h, now) for h in missing}
        return frozenset(h for h, t in self.gone_since.items() if now - t >= self.grace)

    def next_due(self) -> float | None:
        """When the next missing host is to be declared down (the controller recomputes then);
        None when every missing host already is."""
        return min((t + self.grace for t in self.gone_since.values() if t + self.grace > self.now), default=None)
