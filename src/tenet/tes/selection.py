"""Which offer a TES takes, and when it may stop waiting for more (docs/protocol.md, "TES").

The policies rank offers (seed 004: an access switch before a hypervisor, then the higher
processing capability). Waiting the whole offer window only matters when a better offer could
still come; `settled` says when none can, so the TES takes what it has at once. Pure: the
caller owns the clock and the link.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenet.wire.discovery import NveType

# default policy: access switch over hypervisor over router, then capability, then first answer
TYPE_RANK = {NveType.ACCESS_SWITCH: 0, NveType.HYPERVISOR: 1, NveType.ROUTER: 2}
CAPABILITY_MAX = 2**32 - 1  # NVE_CAPABILITY is a u32: no offer can claim more
KNOWN_TTL = 60.0  # s an NVE set learned from a full window is trusted: a new NVE is seen within it


@dataclass(frozen=True)
class Offer:
    nve: str  # the NVE's link address: its MAC (L2 transport) or its IP (L3)
    nve_type: NveType
    capability: int
    vnid: int
    order: int  # arrival order


def default_policy(offers: list[Offer]) -> Offer:
    return min(offers, key=lambda o: (TYPE_RANK.get(o.nve_type, 9), -o.capability, o.order))


def first_answer(offers: list[Offer]) -> Offer:
    return min(offers, key=lambda o: o.order)


POLICIES: dict[str, Callable[[list[Offer]], Offer]] = {"default": default_policy, "first": first_answer}


@dataclass(frozen=True)
class Known:
    """The NVEs that answered the last full offer window, trusted until `expires` (monotonic)."""
    nves: frozenset[str] = frozenset()
    expires: float = 0.0

    def at(self, now: float) -> frozenset[str]:
        return self.nves if now < self.expires else frozenset()


def learned(offers: Sequence[Offer], now: float) -> Known:
    return Known(frozenset(o.nve for o in offers), now + KNOWN_TTL)


def settled(policy: str, offers: Sequence[Offer], known: frozenset[str], ceiling: int = CAPABILITY_MAX) -> bool:
    """True when no offer still to come could change the policy's choice: `first` has its
    answer; `default` holds an offer of the best type with capability at `ceiling` (the
    arrival order breaks ties, so a later equal offer loses); or every NVE in `known` (those
    that can answer at all) has offered, whatever the policy."""
    if not offers:
        return False
    if policy == "first":
        return True
    best = min(TYPE_RANK.values())
    if policy == "default" and any(TYPE_RANK.get(o.nve_type) == best and o.capability >= ceiling for o in offers):
        return True
    return bool(known) and known <= {o.nve for o in offers}
