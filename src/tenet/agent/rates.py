"""Rate limits from RADIUS in the kernel's terms, both directions (docs/dataplane.md, "Rates
both ways"): which HTB class a MAC on a shared access-switch port gets, and which ports get an
upstream stage. Pure: names and values only; translation.py writes the rules, desired.py the
links and qdiscs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tenet.compute.tables import Function, HostTables

SWITCH_PORT_PREFIX = "ts"
MAC_CLASS_MAJOR = "7e02"
UP_CLASS_MAJOR = "7e04"  # a switch port's stage: one HTB class per MAC limited upstream
STAGE_IN = "tnu"  # the upstream stage of a port: a veth pair whose `tnu` end shapes (egress qdisc) …
STAGE_OUT = "tnv"  # … and whose `tnv` end takes the port's place for what arrives from it


def stage_names(port: str) -> tuple[str, str]:
    """(shaping end, arrival end) of a port's upstream stage."""
    digest = hashlib.sha1(f"stage/{port}".encode()).hexdigest()[:10]
    return f"{STAGE_IN}{digest}", f"{STAGE_OUT}{digest}"


@dataclass(frozen=True)
class Stage:
    """Where a port's upstream limits are enforced (docs/dataplane.md, "Rates both ways").

    Frames a limited sender puts on `port` are taken at its ingress (nftables `fwd`) to `shaper`,
    whose egress qdisc holds them to the rate, and arrive on `arrival`, where every ingress
    hook of the port (and, for a TES's bridged port, the bridge) takes them as from the port.
    A TES's port stages everything (tbf on `shaper`); an access switch's port only the limited
    MACs' frames, each into its own HTB class (`minors`), so other MACs never wait behind them."""

    port: str
    shaper: str
    arrival: str
    rate_bps: int = 0  # a TES's port: its whole upstream
    minors: tuple[tuple[str, int, int], ...] = ()  # a switch port: (MAC, class minor, rate)

    @property
    def switch(self) -> bool:
        return self.port.startswith(SWITCH_PORT_PREFIX)


def stages(tables: HostTables, present: frozenset[str]) -> dict[str, Stage]:
    """Present ports with an upstream limit -> their stage."""
    up: dict[str, int] = {}
    for t in tables.vns:
        for e in t.rows(Function.NO_MODIFICATION):
            if e.port and e.rate_up_bps and not e.port.startswith(SWITCH_PORT_PREFIX):
                up[e.port] = e.rate_up_bps
        for r in t.routes:
            if r.port and r.rate_up_bps:
                up[r.port] = r.rate_up_bps
    out = {p: Stage(p, *stage_names(p), rate_bps=rate) for p, rate in up.items() if p in present}
    per_port: dict[str, list[tuple[str, int, int]]] = {}
    rate_of = {(e.port, e.destination): e.rate_up_bps for t in tables.vns for e in t.rows(Function.NO_MODIFICATION)}
    for mac, (port, minor) in mac_minors(tables, up=True).items():
        if port in present:
            per_port.setdefault(port, []).append((mac, minor, rate_of[port, mac]))
    out |= {p: Stage(p, *stage_names(p), minors=tuple(sorted(m))) for p, m in per_port.items()}
    return out


def arrivals(port: str, staged: dict[str, Stage]) -> list[str]:
    """Where frames from `port` meet the ingress hooks: the port, and its stage's arrival end."""
    return [port, staged[port].arrival] if port in staged else [port]


def mac_minors(tables: HostTables, up: bool = False) -> dict[str, tuple[str, int]]:
    """MAC on an access switch port with a rate limit toward it (or, `up`, from it) -> (port,
    HTB class minor). Stable: a MAC's minor comes from the MAC itself, probing only on a
    collision within its port."""
    limited = sorted((e.port, e.destination) for t in tables.vns for e in t.rows(Function.NO_MODIFICATION)
                     if e.port.startswith(SWITCH_PORT_PREFIX) and (e.rate_up_bps if up else e.rate_down_bps))
    out: dict[str, tuple[str, int]] = {}
    taken: dict[str, set[int]] = {}
    for port, mac in limited:
        minor = int(mac.replace(":", ""), 16) % 0xFFF0 + 1
        while minor in taken.setdefault(port, set()):
            minor = minor % 0xFFF0 + 1
        taken[port].add(minor)
        out[mac] = (port, minor)
    return out
