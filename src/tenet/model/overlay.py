"""Overlays of virtual routers joined by virtual links (Berl et al., seed 001).

A virtual router (VR) is a VM that forwards; the loader turns it into a `Vm` with `router`
set and one NIC per link end. A virtual link (VL) is a point-to-point VN of its own between
two VRs of one tenant, with a bandwidth guarantee (HTB rate) and limit (HTB ceil) on every
physical link it crosses (compute/qos.py). A tenant's VRs and VLs form one connected graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network


@dataclass(frozen=True)
class VirtualRouter:
    name: str
    tenant: str
    host: str
    state: str = "running"  # running | paused | stopped (management primitives)


@dataclass(frozen=True)
class VirtualLink:
    name: str  # also the name of the VN that realises it
    tenant: str
    ends: tuple[str, str]  # VR names; ends[0] takes the subnet's first address, ends[1] the second
    subnet: IPv4Network
    guarantee_bps: int = 0  # minimum under contention (0: none beyond a token share)
    limit_bps: int = 0  # maximum (0: the physical link's capacity)

    def address(self, vr: str) -> IPv4Interface:
        hosts = list(self.subnet.hosts())
        return IPv4Interface(f"{hosts[self.ends.index(vr)]}/{self.subnet.prefixlen}")


def components(nodes: list[str], links: list[tuple[str, str]]) -> list[set[str]]:
    """Connected components of an undirected graph, in the order of `nodes`."""
    adj: dict[str, set[str]] = {n: set() for n in nodes}
    for a, b in links:
        adj[a].add(b)
        adj[b].add(a)
    seen: set[str] = set()
    out = []
    for n in nodes:
        if n in seen:
            continue
        comp, todo = set(), [n]
        while todo:
            x = todo.pop()
            if x not in comp:
                comp.add(x)
                todo += adj[x] - comp
        seen |= comp
        out.append(comp)
    return out
