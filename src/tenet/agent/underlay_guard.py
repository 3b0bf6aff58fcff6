"""The underlay accepts only its peers: VXLAN is checked on the uplink before decapsulation.

The kernel hands a VXLAN packet to whichever of its devices owns the VNI, whoever sent it and
to whichever of our addresses or groups: anyone who can reach the uplink could inject into any
VN here, and a replicated VN's VNI sent to another VN's multicast group would be taken too. So
on the uplink's ingress, what the IP stack would receive (a frame to our MAC, a broadcast or a
multicast: translated frames carry external MACs and are not ours to check) on UDP 4789 passes
only if its source is a host implementing the VNI's VN (VnTable.underlay_peers, ourselves left
out) and its destination our underlay address or that VN's own group. A VNI we do not
implement is dropped (a layered VN's included: it travels inside the VN beneath, whose
carriers translation.py `_layer_guard` checks). An L3 access tunnel's port takes its
session's VNI from its TES's address alone.

One lookup per rule, whatever the number of VNs: concatenated sets of (address . VNI), the
VNI read raw from the VXLAN header (`@th,96,24`: bits 32-55 after the UDP header). A first
fragment too short to hold the VNI matches no set and is dropped; later fragments carry no
UDP header and cannot be reassembled without it. Each drop is counted, by chain (docs/metrics.md):
`underlay_unknown` (no VN here has that VNI), `underlay_foreign` (a VN's VNI from a host not
implementing it, or to another group), `underlay_tunnels` (an access tunnel's port, not its TES),
`underlay_flooded` (a VNI not ours to a group none of our VNs uses: other hosts' BUM, which a
physical network without IGMP snooping floods here; never an attack on us, so not `unknown`).

A VN published before `underlay_peers` existed (an older controller) is checked by destination
only, so an upgrade never cuts a VN off. Pure: renders chain text for translation.render.
"""
from __future__ import annotations

from collections.abc import Iterable

from tenet.compute.tables import HostTables

VXLAN_PORT = 4789  # translation.VXLAN_PORT (not imported: translation imports this module)
VNI = "@th,96,24"
GUARD = "underlay"
PRIORITY = -310  # before every other hook on the uplink (uplink_in, -100, takes translated frames)
UNKNOWN, FOREIGN, TUNNELS = "underlay_unknown", "underlay_foreign", "underlay_tunnels"
FLOODED = "underlay_flooded"
CHAINS = (UNKNOWN, FOREIGN, TUNNELS, FLOODED)  # where the drops are counted


def chains(tables: HostTables, port: int = VXLAN_PORT) -> list[str]:
    """The guard's chains for the `netdev tenet` table ([] when no VXLAN device exists here).
    `port`: the VNs' UDP port (bench/dataplane.py guards its hand-made VXLAN on another)."""
    me = tables.underlay_ip
    over = [t for t in tables.vns if t.carrier is None]
    tunnels = sorted({(x.remote, x.udp_port, x.vni) for t in tables.vns for x in t.tunnels})
    if not over and not tunnels:
        return []
    sources = sorted({(p, t.vnid) for t in over for p in t.underlay_peers if p != me})
    targets = sorted({(d, t.vnid) for t in over if t.underlay_peers for d in (me, t.group) if d})
    legacy = sorted({(d, t.vnid) for t in over if not t.underlay_peers for d in (me, t.group) if d})
    ports = {port: f"goto {GUARD}_vxlan"} | {p: f"goto {TUNNELS}" for _, p, _ in tunnels if p != port}
    rules = _tunnel_rule([x for x in tunnels if x[1] == port])
    if sources:
        rules += f"    ip saddr . {VNI} {_pairs(sources)} ip daddr . {VNI} {_pairs(targets)} accept\n"
    if legacy:
        rules += f"    ip daddr . {VNI} {_pairs(legacy)} accept\n"
    if over:
        rules += f"    {VNI} {_set(str(t.vnid) for t in over)} goto {FOREIGN}\n"
    groups = sorted({t.group for t in over if t.group})
    rules += f"    meta pkttype multicast{f' ip daddr != {_set(groups)}' if groups else ''} goto {FLOODED}\n"
    out = [
        f"  chain {GUARD} {{\n"
        f"    type filter hook ingress device \"{tables.uplink}\" priority {PRIORITY}; policy accept;\n"
        f"    meta pkttype {{ host, broadcast, multicast }} udp dport vmap"
        f" {{ {', '.join(f'{p} : {v}' for p, v in sorted(ports.items()))} }}\n  }}\n",
        f"  chain {GUARD}_vxlan {{\n{rules}    goto {UNKNOWN}\n  }}\n",
        f"  chain {UNKNOWN} {{\n    counter drop\n  }}\n",
        f"  chain {FOREIGN} {{\n    counter drop\n  }}\n",
        f"  chain {FLOODED} {{\n    counter drop\n  }}\n",
    ]
    if len(ports) > 1:
        out.append(f"  chain {TUNNELS} {{\n{_tunnel_rule([x for x in tunnels if x[1] != port])}"
                   f"    counter drop\n  }}\n")
    return out


def _tunnel_rule(tunnels: list[tuple[str, int, int]]) -> str:
    if not tunnels:
        return ""
    return f"    ip saddr . udp dport . {VNI} {_set(f'{r} . {p} . {v}' for r, p, v in tunnels)} accept\n"


def _pairs(pairs: Iterable[tuple[str, int]]) -> str:
    return _set(f"{a} . {v}" for a, v in pairs)


def _set(items: Iterable[str]) -> str:
    return "{ " + ", ".join(items) + " }"
