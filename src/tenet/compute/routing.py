"""IP-based forwarding for routed VNs (seed 004, second embodiment): per-VN routing tables
with prefix aggregation. Pure.

Every remote NVE is reached through the largest prefixes that hold its TES addresses and no
other NVE's, so a new TES whose address an existing aggregate already covers changes no
remote table at all — only its own NVE adds a host route.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network


@dataclass(frozen=True)
class Route:
    prefix: str  # "10.63.0.0/26"
    function: str  # "deliver" (local host route) or the addressing function toward the NVE
    address: str  # local: the TES MAC; remote: the NVE's underlay IP
    port: str = ""


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
