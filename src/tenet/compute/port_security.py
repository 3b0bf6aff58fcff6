"""What each NIC may send from, as its host enforces it (agent/port_security.py). Pure.

The controller knows every declared NIC's MAC and addresses, and every admitted TES's
reported or granted address: a local row of the tables carries them, so the agent can drop
a frame from a port that claims another source before it reaches the VN (ARP and ND
included: a VM answering for its neighbour's address would take its traffic).
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from ipaddress import ip_interface

from tenet.model.tenancy import Intent, Nic, Vm


class Guard(str, Enum):
    """How a NIC's frames are checked where they enter its host."""

    ON = "on"  # its MAC; and its addresses (`sources`) when it has any
    ROUTER = "router"  # as ON, and it may also advertise itself as a router (RA, redirects, DHCP replies)
    OFF = "off"  # declared `port_security: false`: any source


Guarding = tuple[Guard, tuple[str, ...]]  # a NIC's guard and the sources it may send from


def tenant_prefixes(intent: Intent) -> dict[str, tuple[str, ...]]:
    """Every prefix of each tenant's VNs and virtual links: what a virtual router of the
    tenant forwards for, and so may send from (it routes only between its tenant's VNs)."""
    out: dict[str, list[str]] = {}
    for v in intent.vns:
        out.setdefault(v.tenant, []).extend(str(n) for n in (v.subnet, v.subnet6) if n is not None)
    return {t: tuple(dict.fromkeys(p)) for t, p in out.items()}


def nic_guard(vm: Vm, nic: Nic, prefixes: dict[str, tuple[str, ...]], tenant: str) -> Guarding:
    """(guard, sources) of a declared NIC. No sources: its MAC alone is checked (a NIC with
    no address may use any, as one that takes its address by DHCP must)."""
    if not nic.port_security:
        return Guard.OFF, ()
    own = [str(a.ip) for a in (nic.ip, *nic.ip6) if a is not None]
    sources = own + [str(a) for a in nic.allowed]
    if vm.router:
        sources += prefixes.get(tenant, ())
    return (Guard.ROUTER if vm.router else Guard.ON), tuple(dict.fromkeys(sources))


def reported_sources(ip: str) -> tuple[str, ...]:
    """An admitted TES's sources: the address RADIUS granted it or it reported ("" none)."""
    return (str(ip_interface(ip).ip),) if ip else ()


def split(sources: Iterable[str]) -> tuple[list[str], list[str]]:
    """(IPv4, IPv6) of a row's sources, each an address or a prefix as nftables writes it."""
    v4, v6 = [], []
    for s in sources:
        net = ip_interface(s).network if "/" in s else None
        text = s if net is None or net.prefixlen < net.max_prefixlen else str(net.network_address)
        (v6 if ":" in s else v4).append(text)
    return v4, v6

