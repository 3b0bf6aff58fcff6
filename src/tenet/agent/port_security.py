"""Port security as nftables netdev chains: a NIC sends only from its MAC and its addresses.

One base chain hooks every guarded port first (after the NVE's packet sockets have tapped
NVO3 and EAPOL, before the gate, the stages and forwarding) and looks the frame's port and
source MAC up: a NIC's pair jumps to that NIC's chain, a NIC with port security off is
accepted, and any other source is dropped. A NIC's chain, when the NIC has addresses
(compute/port_security.py), lets through only ARP, IPv4 and IPv6 (a tag or another
EtherType would carry addresses nobody checks, as Neutron's firewall permits no other
EtherType), and checks every field a neighbour believes:

- ARP: sender MAC and sender IP (0.0.0.0 allowed: an RFC 5227 probe);
- IPv4 source (0.0.0.0 allowed for a DHCP request before the NIC has an address);
- IPv6 source (its addresses and the link-local address its MAC makes; :: for DAD and MLD);
- ND: a neighbor advertisement's target and a DAD probe's target are its addresses, and the
  link-layer address option of a solicitation or advertisement is its MAC;
- and only a router NIC may answer DHCP or send router advertisements and redirects.

Every drop is counted, per NIC chain (`ps_<port>_<mac>`). Pure: renders text.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network, ip_network

from tenet.compute.port_security import Guard, split
from tenet.compute.tables import Function, HostTables

CHAIN = "port_security"
PREFIX = "ps_"
PRIORITY = -275  # after `control` (-300), before link marks (-250), the gate (-200), CoS (-150) and stages (-120)


@dataclass(frozen=True)
class Guarded:
    """One NIC as its port's chain checks it."""

    port: str
    mac: str
    guard: Guard
    sources: tuple[str, ...]

    @property
    def chain(self) -> str:
        return f"{PREFIX}{self.port}_{self.mac.replace(':', '')}"


def guarded(tables: HostTables, ports: frozenset[str]) -> tuple[Guarded, ...]:
    """Every NIC admitted on a port of `ports` (present, ours to check), in a stable order.
    A routed VN's TES may send from its host route's address alone."""
    out: dict[tuple[str, str], Guarded] = {}
    for t in tables.vns:
        if t.forwarding == "ip":
            for r in t.routes:
                if r.function == "deliver" and r.port in ports:
                    out[r.port, r.address] = Guarded(r.port, r.address, Guard.ON, (r.prefix,))
            continue
        for e in t.rows(Function.NO_MODIFICATION):
            if e.port in ports:
                out[e.port, e.destination] = Guarded(e.port, e.destination, e.guard, e.sources)
    return tuple(out[k] for k in sorted(out))


def link_local(mac: str) -> IPv6Address:
    """The modified EUI-64 link-local address a kernel derives from `mac` (RFC 4291 App. A)."""
    b = bytes.fromhex(mac.replace(":", ""))
    iid = bytes([b[0] ^ 0x02, b[1], b[2], 0xFF, 0xFE, b[3], b[4], b[5]])
    return IPv6Address(b"\xfe\x80" + bytes(6) + iid)


def _set(items: list[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def _hex(net: IPv6Network) -> str:
    """An IPv6 address or prefix as a 128-bit raw payload value (nft 1.0.6 has no `icmpv6
    taddr`: an ND target is read at its offset in the ICMPv6 header)."""
    lo, hi = int(net.network_address), int(net.broadcast_address)
    return f"0x{lo:032x}" if lo == hi else f"0x{lo:032x}-0x{hi:032x}"


def _nic_chain(g: Guarded) -> str:
    rules: list[str] = []
    if g.sources:
        v4, v6 = split(g.sources)
        mac = g.mac
        v6 = [*v6, str(link_local(mac))]
        targets = [_hex(ip_network(a)) for a in v6]
        rules += [
            "ether type != { arp, ip, ip6 } counter drop",
            "arp htype != 1 counter drop",
            "arp ptype != ip counter drop",
            "arp hlen != 6 counter drop",
            f"arp saddr ether != {mac} counter drop",
            f"arp saddr ip != {_set(['0.0.0.0', *v4])} counter drop",
            "ip saddr 0.0.0.0 udp sport 68 udp dport 67 accept",
            "ip saddr 0.0.0.0 ip protocol igmp accept",
        ]
        rules += [f"ip saddr != {_set(v4)} counter drop"] if v4 else ["meta protocol ip counter drop"]
        rules += [
            f"icmpv6 type nd-neighbor-advert @th,64,128 != {_set(targets)} counter drop",
            f"ip6 saddr :: icmpv6 type nd-neighbor-solicit @th,64,128 != {_set(targets)} counter drop",
            "ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } accept",
            f"ip6 saddr != {_set(v6)} counter drop",
            "icmpv6 type nd-neighbor-solicit @th,192,8 != 1 counter drop",
            f"icmpv6 type nd-neighbor-solicit @th,208,48 != 0x{mac.replace(':', '')} counter drop",
            "icmpv6 type nd-neighbor-advert @th,192,8 != 2 counter drop",
            f"icmpv6 type nd-neighbor-advert @th,208,48 != 0x{mac.replace(':', '')} counter drop",
        ]
    if g.guard is not Guard.ROUTER:
        rules += [
            "udp sport 67 udp dport 68 counter drop",
            "udp sport 547 udp dport 546 counter drop",
            "icmpv6 type { nd-router-advert, nd-redirect } counter drop",
        ]
    body = "".join(f"    {r}\n" for r in rules)
    return f"  chain {g.chain} {{\n{body}    accept\n  }}\n"


def render(tables: HostTables, ports: frozenset[str]) -> list[str]:
    """The port-security chains of the agent's `netdev tenet` table (none: no guarded port)."""
    nics = guarded(tables, ports)
    hooked = sorted({g.port for g in nics if g.guard is not Guard.OFF})
    if not hooked:
        return []
    verdicts = [(f'"{g.port}" . {g.mac}', "accept" if g.guard is Guard.OFF else f"jump {g.chain}")
                for g in nics if g.port in hooked]
    devices = ", ".join(f'"{p}"' for p in hooked)
    base = (f"  chain {CHAIN} {{\n    type filter hook ingress devices = {{ {devices} }} priority {PRIORITY};"
            f" policy accept;\n    iifname . ether saddr vmap {{ {', '.join(f'{k} : {v}' for k, v in verdicts)} }}\n"
            f"    counter drop\n  }}\n")
    return [base, *(_nic_chain(g) for g in nics if g.port in hooked and g.guard is not Guard.OFF)]
