"""A NIC's port security as declared: `allowed` source prefixes and `port_security`. Pure.

On by default, as in Neutron and OVN: a NIC sends only from its MAC and, once it has
addresses, only from them (docs/security.md). `allowed` adds sources it may use besides its
own (Neutron's allowed-address-pairs: a VIP, the prefixes a router VM forwards for);
`port_security: false` trusts the NIC with any source, and then `allowed` means nothing, so
the two together are refused (as Neutron refuses them).
"""
from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_network
from typing import Protocol, Union

Prefix = Union[IPv4Network, IPv6Network]


class Problems(Protocol):
    def add(self, path: str, message: str) -> None: ...


def port_security(p: Problems, spec: dict, path: str) -> tuple[tuple[Prefix, ...], bool] | None:
    """(allowed, port_security) of one NIC's spec; None (and a problem) when either is wrong."""
    on = spec.get("port_security", True)
    if not isinstance(on, bool):
        p.add(f"{path}.port_security", f"must be true or false, not {on!r}")
        return None
    raw = spec.get("allowed", [])
    if raw is None:
        raw = []
    if not isinstance(raw, list):
        raw = [raw]
    if raw and not on:
        p.add(f"{path}.allowed", "port_security: false already allows every source: leave allowed out")
        return None
    out: list[Prefix] = []
    for i, item in enumerate(raw):
        ipath = f"{path}.allowed[{i}]"
        if not isinstance(item, str):
            p.add(ipath, f"not an address or prefix: {item!r} (quote it)")
            return None
        try:
            net = ip_network(item, strict=True)
        except ValueError as e:
            p.add(ipath, f"not an address or prefix: {item!r} ({e})")
            return None
        if net.is_multicast or net.network_address.is_unspecified and net.prefixlen == net.max_prefixlen:
            p.add(ipath, f"{net} cannot be a source address")
            return None
        if net in out:
            p.add(ipath, f"{net} is listed twice")
            return None
        out.append(net)
    return tuple(out), on
