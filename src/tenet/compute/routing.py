"""IP-based forwarding for routed VNs (seed 004, second embodiment): per-VN routing tables
with prefix aggregation. Pure.

Every remote NVE is reached through the largest prefixes that hold its TES addresses and no
other NVE's, so a new TES whose address an existing aggregate already covers changes no
remote table at all — only its own NVE adds a host route. TESs talk to one anycast gateway
(the subnet's first address, the same MAC on every NVE); between NVEs a frame carries the
destination NVE's router MAC for that VN (unique, allocated like external MACs), either
translated on a shared physical network or inside VXLAN across routers.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from tenet.compute.endpoints import Endpoint
from tenet.compute.extmac import Key
from tenet.model.fabric import Host
from tenet.model.tenancy import VirtualNetwork

DELIVER = "deliver"


@dataclass(frozen=True)
class Route:
    prefix: str  # "10.63.0.0/26"
    function: str  # "deliver" (local host route) or the addressing function toward the NVE
    address: str  # deliver: the TES MAC; remote: the NVE's underlay IP
    port: str = ""  # deliver: the TES's port
    rate_down_bps: int = 0  # deliver: the limit toward that TES (0: none)
    rate_up_bps: int = 0  # deliver: the limit on what that TES sends (0: none)
    mac: str = ""  # remote: the NVE's router MAC for this VN


def gateway_ip(vn: VirtualNetwork) -> IPv4Address:
    assert vn.subnet is not None
    return next(vn.subnet.hosts())


def gateway_mac(vn: VirtualNetwork) -> str:
    """Anycast gateway MAC, the same on every NVE: 02:67:77 + the VN-ID."""
    return "02:67:77:" + ":".join(f"{(vn.vnid >> s) & 0xFF:02x}" for s in (16, 8, 0))


def router_key(vn: str, host: str) -> Key:
    return (vn, f"nve.{host}", 0)


def router_keys(vns: Iterable[VirtualNetwork], endpoints: Iterable[Endpoint]) -> list[Key]:
    routed = {v.name for v in vns if v.forwarding == "ip"}
    return sorted({router_key(e.vn, e.host) for e in endpoints if e.vn in routed})


def aggregates(own: list[IPv4Address], others: list[IPv4Address], within: IPv4Network) -> list[IPv4Network]:
    """Largest prefixes inside `within` covering `own`, none containing any of `others`.

    A prefix of `ip` holds another address iff it is no longer than their common prefix, so
    the longest prefix `ip` shares with any of `others` decides; that one is a neighbour of
    `ip` in sorted order (a bisection, not a scan of every other address)."""
    rest = sorted(int(o) for o in others)
    found: set[IPv4Network] = set()
    for ip in own:
        n = int(ip)
        at = bisect_left(rest, n)
        shared = max((32 - (n ^ rest[j]).bit_length() for j in (at - 1, at) if 0 <= j < len(rest)), default=-1)
        found.add(IPv4Network(f"{ip}/{min(max(shared + 1, within.prefixlen), 32)}", strict=False))
    out: list[IPv4Network] = []
    for net in sorted(found):  # nested or disjoint: a kept prefix holds every later one it overlaps
        if not (out and net.subnet_of(out[-1])):
            out.append(net)
    return out


def routes_by_host(vn: VirtualNetwork, members: tuple[Endpoint, ...] | list[Endpoint], hosts: Mapping[str, Host],
                   extmacs: Mapping[Key, str], function_for) -> dict[str, tuple[Route, ...]]:
    """Every member host's routing table for the VN: host routes for its own TESs, one
    aggregate set per remote NVE. An NVE's aggregates do not depend on who looks at them, so
    they are computed once per NVE and their routes shared per addressing function."""
    assert vn.subnet is not None
    with_ip = [(IPv4Interface(m.ip).ip, m) for m in members if m.ip]
    own: dict[str, list[IPv4Address]] = {}
    deliver: dict[str, list[tuple[tuple, Route]]] = {}
    for ip, m in with_ip:
        own.setdefault(m.host, []).append(ip)
        deliver.setdefault(m.host, []).append(((ip, f"{ip}/32"), Route(
            f"{ip}/32", DELIVER, m.mac, m.port, rate_down_bps=m.rate_down_bps, rate_up_bps=m.rate_up_bps)))
    nets = {peer: aggregates(ips, [ip for ip, m in with_ip if m.host != peer], vn.subnet) for peer, ips in own.items()}
    shared: dict[tuple[str, str], list[tuple[tuple, Route]]] = {}

    def toward(viewer: Host, peer: str) -> list[tuple[tuple, Route]]:
        fn = function_for(viewer, hosts[peer]).value
        if (peer, fn) not in shared:
            mac = extmacs[router_key(vn.name, peer)]
            shared[peer, fn] = [((n.network_address, str(n)), Route(str(n), fn, str(hosts[peer].ip), mac=mac))
                                for n in nets[peer]]
        return shared[peer, fn]

    out: dict[str, tuple[Route, ...]] = {}
    for host in dict.fromkeys(m.host for m in members):
        rows = list(deliver.get(host, ()))
        for peer in sorted(nets.keys() - {host}):
            rows += toward(hosts[host], peer)
        out[host] = tuple(r for _, r in sorted(rows, key=lambda kr: kr[0]))
    return out
