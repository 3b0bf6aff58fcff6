"""IPv6 inside VNs: a VN's `subnet6` and a NIC's `ip6` addresses, checked. Pure.

A NIC may hold several IPv6 addresses (a ULA beside a global prefix, say) next to its one
IPv4 address. Each must be a unicast address a tenant would configure by hand: not
multicast, loopback, unspecified or IPv4-mapped, not link-local (the VM's kernel derives its
own from the MAC) and not the Subnet-Router anycast address of its prefix. Routed VNs
(`forwarding: ip`) are IPv4-only: their NVE answers ARP and routes IPv4 (docs/topology.md).
"""
from __future__ import annotations

from ipaddress import IPv6Address, IPv6Interface, IPv6Network, ip_interface, ip_network
from typing import Any, Protocol


class Problems(Protocol):
    def add(self, path: str, message: str) -> None: ...


def _unusable(a: IPv6Address) -> str:
    """Why `a` cannot be a NIC's configured address ("" when it can)."""
    for test, what in ((a.is_multicast, "multicast"), (a.is_unspecified, "the unspecified address"),
                       (a.is_loopback, "the loopback address"), (a.is_link_local, "link-local (the kernel makes its own)"),
                       (a.ipv4_mapped is not None, "IPv4-mapped")):
        if test:
            return what
    return ""


def _text(p: Problems, value: Any, path: str) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 reads 1:2:3 as base 60
        p.add(path, f"YAML read this as the number {value}: quote the address")
    else:
        p.add(path, f"not an IPv6 address: {value!r}")
    return None


def subnet6(p: Problems, value: Any, path: str) -> IPv6Network | None:
    """A VN's IPv6 prefix: strict (no host bits), unicast, not link-local."""
    text = _text(p, value, path)
    if text is None:
        return None
    try:
        net = ip_network(text, strict=True)
    except ValueError as e:
        p.add(path, f"not an IPv6 prefix: {value!r} ({e})")
        return None
    if not isinstance(net, IPv6Network):
        p.add(path, f"not an IPv6 prefix: {value!r} (use subnet for IPv4)")
        return None
    why = _unusable(net.network_address)
    if why:
        p.add(path, f"{net} is {why}")
        return None
    return net


def addresses6(p: Problems, value: Any, path: str, vn: str, within: IPv6Network | None
               ) -> tuple[IPv6Interface, ...] | None:
    """A NIC's `ip6`: one address or a list of them, each with a prefix length (optional when
    the VN declares `subnet6`, whose prefix it must then lie in). None if any is wrong."""
    items = value if isinstance(value, list) else [value]
    if not items:
        p.add(path, "an empty list: leave ip6 out instead")
        return None
    out: list[IPv6Interface] = []
    ok = True
    for i, item in enumerate(items):
        ipath = f"{path}[{i}]" if isinstance(value, list) else path
        addr = _address(p, item, ipath, vn, within)
        if addr is None:
            ok = False
        elif any(a.ip == addr.ip for a in out):
            p.add(ipath, f"{addr.ip} is listed twice")
            ok = False
        else:
            out.append(addr)
    return tuple(out) if ok else None


def _address(p: Problems, value: Any, path: str, vn: str, within: IPv6Network | None) -> IPv6Interface | None:
    text = _text(p, value, path)
    if text is None:
        return None
    if "/" not in text:
        if within is None:
            p.add(path, f"{text} needs a prefix length (VN {vn} has no subnet6)")
            return None
        text = f"{text}/{within.prefixlen}"
    try:
        addr = ip_interface(text)
    except ValueError:
        p.add(path, f"not an IPv6 address: {value!r}")
        return None
    if not isinstance(addr, IPv6Interface):
        p.add(path, f"{value!r} is IPv4: put it in ip, IPv6 addresses in ip6")
        return None
    why = _unusable(addr.ip)
    if why:
        p.add(path, f"{addr.ip} is {why}")
        return None
    if addr.network.prefixlen < 127 and addr.ip == addr.network.network_address:
        p.add(path, f"{addr.ip} is the Subnet-Router anycast address of {addr.network}")
        return None
    if within is not None and addr.network != within:
        p.add(path, f"{addr} has prefix length {addr.network.prefixlen}, but VN {vn}'s subnet6 is {within}"
              if addr.ip in within else f"{addr} is not in VN {vn}'s subnet6 {within}")
        return None
    return addr
