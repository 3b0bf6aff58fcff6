"""Sharing a physical link between virtual links (seed 001): HTB on each host's uplink. Pure.

A physical network with a capacity gets, on every uplink of a host on it, an HTB root whose
parent class is the capacity; each virtual link with an end on that host and the other end
elsewhere gets a class — rate = its guarantee, ceil = its limit (or the capacity) — and all
other traffic (other VNs, the underlay's own) shares a default class with what is left. The
agent marks a link's frames with the class (nftables `meta priority` on the VR's port), which
survives translation's `fwd` and VXLAN encapsulation alike.
"""
from __future__ import annotations

from dataclasses import dataclass

from tenet.model.overlay import VirtualLink
from tenet.model.tenancy import Intent, Nic, port_name

UPLINK_MAJOR = 0x7E03
PARENT, DEFAULT, FIRST = 0x1, 0xFFFF, 0x10
TOKEN_RATE = 8_000  # an HTB rate must be positive: links without a guarantee get a token one


@dataclass(frozen=True)
class LinkClass:
    vl: str
    minor: int
    rate_bps: int
    ceil_bps: int
    ports: tuple[str, ...]  # this host's VR ports on the link, whose frames are marked


@dataclass(frozen=True)
class UplinkQos:
    capacity_bps: int
    default_rate_bps: int  # what the unmarked rest is guaranteed
    classes: tuple[LinkClass, ...]


def uplink_qos(intent: Intent, host: str) -> UplinkQos | None:
    return uplinks_qos(intent)[host]


def uplinks_qos(intent: Intent) -> dict[str, UplinkQos | None]:
    """Every host's uplink share, from maps of the overlay built once (not once per host)."""
    caps = {n.name: n.capacity_bps for n in intent.fabric.networks}
    where = {vr.name: vr.host for vr in intent.vrouters}
    idle = {vr.name for vr in intent.vrouters if vr.state != "running"}  # their links' guarantees are free
    nics = {vm.name: vm.nics for vm in intent.vms if vm.router}
    vnid = {v.name: v.vnid for v in intent.vns}
    links = sorted(intent.vlinks, key=lambda vl: vnid[vl.name])
    return {h.name: _uplink(h.name, caps[h.network], links, where, idle, nics) for h in intent.fabric.hosts}


def _uplink(host: str, cap: int, links: list[VirtualLink], where: dict[str, str], idle: set[str],
            nics: dict[str, tuple[Nic, ...]]) -> UplinkQos | None:
    if not cap:
        return None
    classes = []
    for i, vl in enumerate(links):
        ends = [where[e] for e in vl.ends]
        if host not in ends or ends[0] == ends[1] or idle & set(vl.ends):
            continue  # not here, or never on the wire
        ports = tuple(port_name(e, k) for e in vl.ends if where[e] == host
                      for k, n in enumerate(nics[e]) if n.network == vl.name)
        ceil = min(vl.limit_bps or cap, cap)
        classes.append(LinkClass(vl.name, FIRST + i, min(vl.guarantee_bps or TOKEN_RATE, ceil), ceil, ports))
    rest = max(cap - sum(c.rate_bps for c in classes if c.rate_bps > TOKEN_RATE), TOKEN_RATE)
    return UplinkQos(cap, rest, tuple(classes))
