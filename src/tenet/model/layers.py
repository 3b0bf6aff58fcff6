"""Layered VNs (seed 002, FIG. 9A): a VN whose NVEs reach each other over another VN.

A host that carries an upper VN joins the lower VN itself, through a *carrier*: a veth pair in
the NVE's namespace, one end a port of the lower VN's bridge, the other the host's address on
the lower VN. The upper VN's VXLAN device sends from that address, so its frames leave as the
lower VN's own traffic, translated or encapsulated by the lower VN's table in turn: one table
per layer, composed by the kernel. Layers stack (an upper VN may itself carry VNs). Pure.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network

from tenet.model.tenancy import Intent, VirtualNetwork

CARRIER_PORT = "tnl"  # + lower VN-ID: the end in the lower VN's bridge
CARRIER_DEV = "tnm"  # + lower VN-ID: the end holding the host's address on the lower VN
UNDERLAY = IPv4Network("198.18.0.0/15")
VXLAN_OVERHEAD = 50  # outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8: paid once per layer


@dataclass(frozen=True)
class Carrier:
    """One host's presence on a lower VN, shared by every VN layered over it on that host."""

    vn: str  # the lower VN
    vnid: int
    host: str
    mac: str
    ip: str  # "10.8.0.254/24"
    layer: int  # the lower VN's own layer: 0 = directly over the underlay

    @property
    def port(self) -> str:
        return f"{CARRIER_PORT}{self.vnid}"

    @property
    def dev(self) -> str:
        return f"{CARRIER_DEV}{self.vnid}"

    @property
    def vm(self) -> str:
        """Its name as a member of the lower VN: a dot never occurs in a VM name."""
        return f"{self.host}.nve"


def layer(vns: dict[str, VirtualNetwork], vn: VirtualNetwork) -> int:
    """How many VNs lie beneath `vn` (0: its VXLAN runs on the underlay). Assumes no cycle."""
    n = 0
    while vn.over:
        vn, n = vns[vn.over], n + 1
    return n


def carrier_mac(lower: str, host: str) -> str:
    """Stable and locally administered (0a:): a host's MAC on a lower VN never changes."""
    d = hashlib.sha1(f"carrier/{lower}/{host}".encode()).hexdigest()[:10]
    return "0a:" + ":".join(d[i : i + 2] for i in range(0, 10, 2))


def carrier_ip(subnet: IPv4Network, host_index: int) -> IPv4Interface:
    """Carriers take the top of the lower VN's subnet, one per host in declaration order."""
    return IPv4Interface(f"{subnet.broadcast_address - 1 - host_index}/{subnet.prefixlen}")


def carrier(intent: Intent, lower: VirtualNetwork, host: str) -> Carrier:
    index = [h.name for h in intent.fabric.hosts].index(host)
    return carrier_at(lower, host, index, layer({v.name: v for v in intent.vns}, lower))


def carrier_at(lower: VirtualNetwork, host: str, index: int, lower_layer: int) -> Carrier:
    """`carrier` from what it depends on (the host's position, the lower VN's layer), for
    callers that index the intent once rather than once per carrier."""
    assert lower.subnet is not None
    return Carrier(lower.name, lower.vnid, host, carrier_mac(lower.name, host), str(carrier_ip(lower.subnet, index)),
                   lower_layer)


def max_layer(intent: Intent) -> int:
    vns = {v.name: v for v in intent.vns}
    return max((layer(vns, v) for v in intent.vns), default=0)


def problems(vns: list[VirtualNetwork], hosts: list[str], nic_ips: list[tuple[str, str, IPv4Interface]]
             ) -> list[tuple[str, str]]:
    """What is wrong with the topology's layering, as (path, message). `nic_ips` are
    (owner, VN, address) of every NIC and RADIUS user, which the carriers must not take."""
    by_name = {v.name: v for v in vns}
    out: list[tuple[str, str]] = []
    carrying: dict[str, VirtualNetwork] = {}
    for vn in vns:
        if not vn.over:
            continue
        path = f"networks.{vn.name}.over"
        lower = by_name.get(vn.over)
        chain, x = [vn.name], lower
        while x is not None and x.over and x.name not in chain:
            chain.append(x.name)
            x = by_name.get(x.over)
        if lower is None:
            out.append((path, f"no VN named {vn.over!r} to layer over"))
        elif x is not None and x.name in chain:
            out.append((path, f"layers form a cycle: {' → '.join(chain + [x.name])}"))
        elif lower.tenant != vn.tenant:
            out.append((path, f"{lower.name} belongs to tenant {lower.tenant}, not {vn.tenant}: a VN is layered "
                              "only over a VN of its own tenant"))
        elif "ip" in (vn.forwarding, lower.forwarding):
            out.append((path, "layering needs MAC-based VNs on both layers (an IP-based VN has no bridge to carry)"))
        elif lower.subnet is None:
            out.append((path, f"{lower.name} needs a subnet: the NVEs take their carrier addresses from it"))
        elif vn.bum.value != "replicate":
            out.append((f"networks.{vn.name}.bum", "a layered VN replicates to its peers' carriers "
                                                   "(the lower VN routes no multicast): bum must be replicate"))
        else:
            carrying[lower.name] = lower
    for name, lower in carrying.items():
        assert lower.subnet is not None
        path = f"networks.{name}.subnet"
        if lower.subnet.overlaps(UNDERLAY):
            out.append((path, f"{lower.subnet} overlaps the underlay ({UNDERLAY}): it carries layered VNs, so "
                              "its routes live beside the underlay's in every NVE"))
        for other in carrying.values():
            if other.name < name and other.subnet is not None and other.subnet.overlaps(lower.subnet):
                out.append((path, f"{lower.subnet} overlaps {other.name} ({other.subnet}): both carry layered "
                                  "VNs, and an NVE routes to both"))
        if lower.subnet.num_addresses - 2 <= len(hosts):
            out.append((path, f"{lower.subnet} has no room for a carrier address per host ({len(hosts)})"))
            continue
        taken = {carrier_ip(lower.subnet, i).ip: h for i, h in enumerate(hosts)}
        for owner, vn, ip in nic_ips:
            if vn == name and ip.ip in taken:
                out.append((path, f"{owner} uses {ip.ip}, the carrier address of host {taken[ip.ip]} (carriers "
                                  "take the top of a subnet that carries layered VNs)"))
    return out
