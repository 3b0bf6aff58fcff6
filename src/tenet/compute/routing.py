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
    """Largest prefixes inside `within` covering `own`, none containing any of `others`."""
    found: set[IPv4Network] = set()
    for ip in own:
        best = IPv4Network(f"{ip}/32")
        for plen in range(31, within.prefixlen - 1, -1):
            cand = IPv4Network(f"{ip}/{plen}", strict=False)
            if any(o in cand for o in others):
                break
            best = cand
        found.add(best)
    return sorted(n for n in found if not any(n != m and n.subnet_of(m) for m in found))


def routes(vn: VirtualNetwork, host: Host, members: tuple[Endpoint, ...], hosts: Mapping[str, Host],
           extmacs: Mapping[Key, str], function_for) -> tuple[Route, ...]:
    """Host routes for local TESs, one aggregate set per remote NVE."""
    assert vn.subnet is not None
    with_ip = [m for m in members if m.ip]
    ip = lambda m: IPv4Interface(m.ip).ip  # noqa: E731
    out = [Route(f"{ip(m)}/32", DELIVER, m.mac, m.port, rate_down_bps=m.rate_down_bps,
                 rate_up_bps=m.rate_up_bps) for m in with_ip if m.host == host.name]
    for peer in sorted({m.host for m in with_ip} - {host.name}):
        own = [ip(m) for m in with_ip if m.host == peer]
        others = [ip(m) for m in with_ip if m.host != peer]
        fn = function_for(host, hosts[peer]).value
        mac = extmacs[router_key(vn.name, peer)]
        out += [Route(str(n), fn, str(hosts[peer].ip), mac=mac) for n in aggregates(own, others, vn.subnet)]
    return tuple(sorted(out, key=lambda r: (IPv4Network(r.prefix).network_address, r.prefix)))
