"""L2 translation as an nftables netdev ruleset: rewriting and forwarding entirely in the kernel.

Translated frames never touch the VN bridge; they go port to uplink and uplink to port:

  out: VM port ingress, daddr is a translated peer -> saddr internal->external,
       daddr internal->external, fwd to the uplink (anything else continues to the bridge)
  in:  uplink ingress, daddr is a local external MAC -> that VN's chain: only known peers of the
       same VN pass; saddr and daddr external->internal; fwd to the destination VM's port

A frame whose addresses are not in its VN's maps is dropped, which is what isolates tenants
that reuse MACs. Bypassing the bridge keeps the translated path as short as the underlay's
plus the VM's own veth (docs/benchmarks.md). Pure: renders text; the nft driver applies it.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from tenet.agent import underlay_guard
from tenet.agent.rates import (  # noqa: F401  (re-exported: the rest of the agent reads them here)
    MAC_CLASS_MAJOR,
    STAGE_IN,
    STAGE_OUT,
    SWITCH_PORT_PREFIX,
    UP_CLASS_MAJOR,
    Stage,
    arrivals,
    mac_minors,
    stage_names,
    stages,
)
from tenet.agent import port_security
from tenet.compute.qos import UPLINK_MAJOR
from tenet.compute.tables import Function, HostTables, VnTable
from tenet.wire.discovery import ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION

TABLE = "tenet"
VXLAN_PORT = 4789


def bridge_name(vnid: int) -> str:
    return f"tnb{vnid}"


ACCESS_BRIDGE_SIDE = "tnr"  # veth end in the VN's bridge …
ACCESS_SWITCH_SIDE = "tnq"  # … and its peer, where nftables steers to and from the switch's access ports


def _priority_rule(pairs: list[tuple[str, int]]) -> str:
    """Steer frames to rate-limited MACs into their HTB class (a map miss leaves the rest alone)."""
    if not pairs:
        return ""
    return f"    meta priority set ether daddr map {_map([(m, f'{MAC_CLASS_MAJOR}:{minor:x}') for m, minor in pairs])}\n"


def access_names(vnid: int) -> tuple[str, str]:
    return f"{ACCESS_BRIDGE_SIDE}{vnid}", f"{ACCESS_SWITCH_SIDE}{vnid}"


def vxlan_name(vnid: int) -> str:
    return f"tnx{vnid}"


def needs_translation(t: VnTable) -> bool:
    """Frames leave translated (a peer on our network), or may arrive so: a VM being
    live-migrated is reached by encapsulation while it still sends translated frames."""
    return t.forwarding == "mac" and (bool(t.rows(Function.TRANSLATE_L2)) or any(r.internal for r in t.reverse))


@dataclass(frozen=True)
class VnMaps:
    """One VN's translation maps on a host, as render() writes them into its chains (and
    compute/trace.py follows them: one source for both)."""

    port_of: dict[str, str]  # internal MAC -> its port, for local TESs whose port is present
    local_in: tuple[tuple[str, str], ...]  # (external, internal): local TESs, as peers address them
    peer_in: tuple[tuple[str, str], ...]  # (external, internal): translated peers, as they arrive
    peer_out: tuple[tuple[str, str], ...]  # (internal, external): destinations sent translated


def vn_maps(t: VnTable, present_ports: frozenset[str]) -> VnMaps | None:
    """The VN's maps, or None when it has no translation chains here: nothing arrives
    translated for it (a frame to one of its external MACs is not claimed) and nothing leaves so."""
    if not needs_translation(t):
        return None
    port_of = {e.destination: e.port for e in t.rows(Function.NO_MODIFICATION) if e.port in present_ports}
    local_in = tuple((r.arrival, r.internal) for r in t.reverse if r.local and r.internal in port_of)
    peer_in = tuple((r.arrival, r.internal) for r in t.reverse if r.internal and not r.local)
    if not local_in or not peer_in:
        return None
    return VnMaps(port_of, local_in, peer_in, tuple((e.destination, e.address) for e in t.rows(Function.TRANSLATE_L2)))


def _map(pairs: list[tuple[str, str]]) -> str:
    return "{ " + ", ".join(f"{k} : {v}" for k, v in sorted(pairs)) + " }"


def _names(devices: list[str]) -> str:
    """One interface name, or an anonymous set of them."""
    quoted = [f'"{d}"' for d in devices]
    return quoted[0] if len(quoted) == 1 else _set(quoted)


def _set(items: list[str]) -> str:
    return "{ " + ", ".join(sorted(items)) + " }"


def render(tables: HostTables, present_ports: frozenset[str]) -> str:
    """The whole `netdev tenet` table (translation and the admission gate), or "" if empty.

    Only ports present in the kernel are named: nft refuses a hook on a missing device.
    """
    up = tables.uplink
    dispatch: list[tuple[str, str]] = []
    chains: list[str] = []
    staged = stages(tables, present_ports)
    for t in tables.vns:
        maps = vn_maps(t, present_ports)
        if maps is None:
            continue
        port_of, local_in, peer_in, peer_out = maps.port_of, list(maps.local_in), list(maps.peer_in), list(maps.peer_out)
        ports = sorted({port_of[i] for _, i in local_in})
        deliver = [(i, f'"{p}"') for i, p in port_of.items()]
        dispatch += [(ext, f"jump vn{t.vnid}_in") for ext, _ in local_in]
        limited = mac_minors(tables)
        prio = _priority_rule([(ext, limited[i][1]) for ext, i in local_in if i in limited])
        chains.append(
            f"  chain vn{t.vnid}_in {{\n{prio}"
            f"    ether saddr {_set([e for e, _ in peer_in])}"
            f" ether saddr set ether saddr map {_map(peer_in)}"
            f" ether daddr set ether daddr map {_map(local_in)}"
            f" fwd to ether daddr map {_map(deliver)}\n"
            f"    drop\n  }}\n"
        )
        if not peer_out:
            continue
        devices = ", ".join(f'"{d}"' for p in ports for d in arrivals(p, staged))
        chains.append(
            f"  chain vn{t.vnid}_out {{\n"
            f"    type filter hook ingress devices = {{ {devices} }} priority -100; policy accept;\n"
            f"    ether saddr {_set([i for _, i in local_in])}"  # a switch port carries other VNs' MACs too
            f" ether daddr {_set([i for i, _ in peer_out])}"
            f" ether saddr set ether saddr map {_map([(i, e) for e, i in local_in])}"
            f" ether daddr set ether daddr map {_map(peer_out)} fwd to \"{up}\"\n"
            f"  }}\n"
        )
    for t in tables.vns:
        if t.forwarding == "ip":
            chains += _routed(t, tables.uplink, present_ports, dispatch, staged)
    carriers = {t.carrier.port for t in tables.vns if t.carrier}
    chains += port_security.render(tables, present_ports - carriers)  # the NVE's own carrier ports are not a TES's
    chains += _stages(staged)
    chains += _access(tables, present_ports, staged)
    chains += _link_marks(tables, present_ports)
    chains += _layer_guard(tables)
    chains += underlay_guard.chains(tables)
    chains += _nve_local(tables)
    chains += _control_stays(present_ports)
    if dispatch:
        chains.append(
            f"  chain uplink_in {{\n"
            f"    type filter hook ingress device \"{up}\" priority -100; policy accept;\n"
            f"    ether daddr vmap {_map(dispatch)}\n  }}\n"
        )
    admitted = {e.port for t in tables.vns for e in t.rows(Function.NO_MODIFICATION)}
    admitted |= {r.port for t in tables.vns for r in t.routes if r.port}
    gated = sorted(present_ports - admitted)
    if gated:
        # A port nobody admitted (a TES before its Access-Accept, or after it left) passes
        # discovery and session frames to the NVE's packet socket and nothing else.
        devices = ", ".join(f'"{p}"' for p in gated)
        chains.append(
            f"  chain gate {{\n"
            f"    type filter hook ingress devices = {{ {devices} }} priority -200; policy accept;\n"
            f"    ether type {{ {ETHERTYPE_DISCOVERY:#06x}, {ETHERTYPE_SESSION:#06x} }} accept\n"
            f"    counter drop\n  }}\n"
        )
    if not chains:
        return ""
    body = "".join(chains)
    digest = hashlib.sha256(body.encode()).hexdigest()[:16]
    return f"table netdev {TABLE} {{\n  comment \"{digest}\"\n{body}}}\n"


def _routed(t: VnTable, up: str, present: frozenset[str], dispatch: list[tuple[str, str]],
            staged: dict[str, Stage]) -> list[str]:
    """A routed VN: the per-VN routing table as an nftables interval verdict map.

    TESs send everything to the anycast gateway MAC; their port's hook looks the destination
    up: a local host route rewrites to the TES's MAC and forwards to its port; an aggregate
    rewrites to the owning NVE's router MAC and forwards to the uplink (same physical network)
    or into the VN's VXLAN device. Arrivals from other NVEs carry our router MAC and take the
    same host routes. No bridge, no ARP across NVEs, no VRF needed.
    """
    local = [r for r in t.routes if r.function == "deliver" and r.port in present]
    if not local:
        return []
    gw_mac = t.gateway.split()[1]
    v, vx = t.vnid, vxlan_name(t.vnid)
    ip = lambda r: r.prefix.removesuffix("/32")  # noqa: E731
    verdicts = [(ip(r), f"jump ipvn{v}_deliver") for r in local]
    chains: list[str] = []
    deliver = [(ip(r), f'"{r.port}"') for r in local]
    chains.append(
        f"  chain ipvn{v}_deliver {{\n"
        f"    ether saddr set {gw_mac} ether daddr set ip daddr map {_map([(ip(r), r.address) for r in local])}"
        f" fwd to ip daddr map {_map(deliver)}\n    drop\n  }}\n"
    )
    for mac in sorted({r.mac for r in t.routes if r.mac}):
        via = next(r for r in t.routes if r.mac == mac)
        dev = up if via.function == Function.TRANSLATE_L2.value else vx
        name = f"ipvn{v}_to_{mac.replace(':', '')}"
        chains.append(
            f"  chain {name} {{\n"
            f"    ether saddr set {t.router_mac} ether daddr set {mac} fwd to \"{dev}\"\n  }}\n"
        )
        verdicts += [(r.prefix, f"jump {name}") for r in t.routes if r.mac == mac]
    ports = ", ".join(f'"{d}"' for r in sorted(local, key=lambda r: r.port) for d in arrivals(r.port, staged))
    chains.append(
        f"  chain ipvn{v}_out {{\n"
        f"    type filter hook ingress devices = {{ {ports} }} priority -100; policy drop;\n"
        f"    ether daddr {gw_mac} ip daddr vmap {_map(verdicts)}\n  }}\n"
    )
    chains.append(
        f"  chain ipvn{v}_in {{\n"
        f"    ip daddr vmap {_map([(ip(r), f'jump ipvn{v}_deliver') for r in local])}\n    drop\n  }}\n"
    )
    chains.append(
        f"  chain ipvn{v}_vxlan {{\n"
        f"    type filter hook ingress device \"{vx}\" priority -100; policy drop;\n"
        f"    ether daddr {t.router_mac} jump ipvn{v}_in\n  }}\n"
    )
    dispatch.append((t.router_mac, f"jump ipvn{v}_in"))
    return chains


def _nve_local(tables: HostTables) -> list[str]:
    """A VN's bridge hands the NVE's own stack whatever is addressed to the bridge (and a copy
    of every broadcast): the host would answer a tenant's ARP for its underlay or carrier
    address, and take VXLAN from the tenant, which it decapsulates into any VN by VNI. The
    NVE has nothing to receive from a VN, so that path is closed."""
    bridges = sorted(bridge_name(t.vnid) for t in tables.vns if t.forwarding == "mac")
    if not bridges:
        return []
    devices = ", ".join(f'"{b}"' for b in bridges)
    return [f"  chain nve_local {{\n    type filter hook ingress devices = {{ {devices} }}"
            f" priority -300; policy drop;\n  }}\n"]


def _control_stays(present_ports: frozenset[str]) -> list[str]:
    """NVO3 discovery and session frames are for the NVE alone. Its packet sockets tap them
    before this hook runs, so dropping them here loses nothing — and keeps an admitted port's
    bridge from flooding a TES's DISCOVER (VN name, host-uniq) and EAP identity into the VN,
    to every host and VM of it."""
    if not present_ports:
        return []
    devices = ", ".join(f'"{p}"' for p in sorted(present_ports))
    return [f"  chain control {{\n    type filter hook ingress devices = {{ {devices} }} priority -300; policy accept;\n"
            f"    ether type {{ {ETHERTYPE_DISCOVERY:#06x}, {ETHERTYPE_SESSION:#06x} }} counter drop\n  }}\n"]


def _layer_guard(tables: HostTables) -> list[str]:
    """A carrier's address is reachable by every member of the lower VN, and the kernel hands
    any VXLAN packet to whichever device owns its VNI: a tenant VM could otherwise inject into
    any VN on this host. So a carrier takes only ARP and VXLAN of the VNs layered over it from
    their peers' carriers, and the underlay may not deliver those VNIs at all (agent/underlay_guard.py
    knows no underlay peer of a layered VN: its VNI is unknown there). (Translated
    frames of a lower VN carry them to a carrier's address, not ours, and pass.)"""
    over: dict[str, tuple[set[int], set[str]]] = {}
    for t in tables.vns:
        if t.carrier:
            vnis, peers = over.setdefault(t.carrier.dev, (set(), set()))
            vnis.add(t.vnid)
            peers.update(p for e in t.rows(Function.REPLICATE) for p in e.peers)
    if not over:
        return []
    rules = ""
    for dev, (vnis, peers) in sorted(over.items()):
        if peers:
            rules += (f'    iifname "{dev}" ip saddr {_set(list(peers))} udp dport {VXLAN_PORT}'
                      f' @th,96,24 {_set([str(v) for v in vnis])} accept\n')
        rules += f'    iifname "{dev}" meta protocol arp accept\n    iifname "{dev}" drop\n'
    devices = ", ".join(f'"{d}"' for d in sorted(over))
    return [f"  chain layer_guard {{\n    type filter hook ingress devices = {{ {devices} }}"
            f" priority -300; policy accept;\n{rules}  }}\n"]


def _link_marks(tables: HostTables, present: frozenset[str]) -> list[str]:
    """A virtual router's frames on a virtual link carry the link's uplink class (compute/qos.py)
    from the moment they enter: skb priority survives `fwd` and VXLAN encapsulation alike."""
    marks = sorted((p, c.minor) for c in (tables.qos.classes if tables.qos else ()) for p in c.ports if p in present)
    if not marks:
        return []
    devices = ", ".join(f'"{p}"' for p, _ in marks)
    rules = "".join(f'    iifname "{p}" meta priority set {UPLINK_MAJOR:x}:{m:x}\n' for p, m in marks)
    return [f"  chain link_marks {{\n    type filter hook ingress devices = {{ {devices} }}"
            f" priority -250; policy accept;\n{rules}  }}\n"]


def _stages(staged: dict[str, Stage]) -> list[str]:
    """Upstream stages (class Stage): after the control drop (-300), the gate (-200), the link
    marks (-250) and the CoS marking (-150), before every forwarding hook (-100, -50)."""
    if not staged:
        return []
    rules = ""
    for s in sorted(staged.values(), key=lambda s: s.port):
        if s.switch:
            macs = _set([m for m, _, _ in s.minors])
            prio = _map([(m, f"{UP_CLASS_MAJOR}:{minor:x}") for m, minor, _ in s.minors])
            rules += f'    iifname "{s.port}" ether saddr {macs} meta priority set ether saddr map {prio} fwd to "{s.shaper}"\n'
        else:
            rules += f'    iifname "{s.port}" fwd to "{s.shaper}"\n'
    devices = ", ".join(f'"{p}"' for p in sorted(staged))
    chains = [f"  chain stage_up {{\n    type filter hook ingress devices = {{ {devices} }}"
              f" priority -120; policy accept;\n{rules}  }}\n"]
    # A TES's stage replaces its port in the bridge: what the bridge sends it comes back out
    # of the stage's shaping end and goes on to the port (down: shaped there, on the port).
    back = sorted((s.shaper, s.port) for s in staged.values() if not s.switch)
    if back:
        devices = ", ".join(f'"{d}"' for d, _ in back)
        rules = "".join(f'    iifname "{d}" fwd to "{p}"\n' for d, p in back)
        chains.append(f"  chain stage_down {{\n    type filter hook ingress devices = {{ {devices} }}"
                      f" priority -100; policy drop;\n{rules}  }}\n")
    return chains


def _access(tables: HostTables, present: frozenset[str], staged: dict[str, Stage]) -> list[str]:
    """An access switch's ports (seed 000): many authorized MACs per port, each in its own VN.

    `access_in` (after translation's hooks, which take translated peers first) looks up
    port . source MAC: an authorized pair jumps to its VN's chain, anything else is dropped
    (EAPOL already reached the authenticator's packet socket). The VN's chain switches to other
    members on the switch directly, copies broadcasts to each other member, and sends the frame
    into the VN's bridge through `tnq<vnid>` → `tnr<vnid>`. Frames the bridge sends back arrive
    on `tnq<vnid>`, where `accout<vnid>` forwards them to the destination MAC's port (broadcast:
    a copy to each member MAC, see below); unknown unicast is dropped.
    """
    members: dict[int, list[tuple[str, str]]] = {}
    for t in tables.vns:
        if t.forwarding == "mac":
            for e in t.rows(Function.NO_MODIFICATION):
                if e.port.startswith(SWITCH_PORT_PREFIX) and e.port in present:
                    members.setdefault(t.vnid, []).append((e.port, e.destination))
    ports = sorted({p for m in members.values() for p, _ in m})
    # a port with no authorized MAC is closed: nothing from it reaches a VN nor the switch's own
    # stack (its EAPOL and MAB's first frames reach the authenticator's socket, a tap, before)
    closed = sorted(p for p in present if p.startswith(SWITCH_PORT_PREFIX) and p not in ports)
    if not ports and not closed:
        return []
    devices = ", ".join(f'"{p}"' for p in ports)
    via = {p: arrivals(p, staged) for p in ports}  # a limited MAC's frames arrive on its port's stage
    up_limited = {(p, m) for p, s in staged.items() for m, _, _ in s.minors}
    marked = sorted((e.port, e.destination, e.cos) for t in tables.vns for e in t.rows(Function.NO_MODIFICATION)
                    if e.cos and e.port in ports)
    cos_chain = []
    if marked:  # before translation (-100) and steering (-50): every path sees the mark
        rules = "".join(f'    iifname "{p}" ether saddr {m} ip dscp set cs{c}\n' for p, m, c in marked)
        cos_chain = [f"  chain access_cos {{\n    type filter hook ingress devices = {{ {devices} }}"
                     f" priority -150; policy accept;\n{rules}  }}\n"]
    verdicts = [(f'"{p}" . {mac}', f"jump acc{v}") for v, m in members.items() for p, mac in m]
    verdicts += [(f'"{staged[p].arrival}" . {mac}', f"jump acc{v}") for v, m in members.items() for p, mac in m
                 if (p, mac) in up_limited]
    hooked = [d for p in ports for d in via[p]] + closed
    lookup = f"    iifname . ether saddr vmap {_map(verdicts)}\n" if verdicts else "    counter\n"
    chains = cos_chain + [
        f"  chain access_in {{\n"
        f"    type filter hook ingress devices = {{ {', '.join(f'{chr(34)}{d}{chr(34)}' for d in hooked)} }}"
        f" priority -50; policy drop;\n{lookup}  }}\n"
    ]
    limited = mac_minors(tables)
    for v, m in sorted(members.items()):
        _, outside = access_names(v)
        to_port = _map([(mac, f'"{p}"') for p, mac in m])
        prio = _priority_rule([(mac, limited[mac][1]) for _, mac in m if mac in limited])
        # A port is shared by MACs of several VNs, and frames go down it untagged (this kernel
        # has no 802.1Q): a VN's broadcast sent down as is would reach every VM behind the port.
        # So each member gets its own copy, addressed to its MAC (a unicast ARP request is
        # still answered); the host's bridge delivers it to that VM alone.
        bum = "".join(f'    iifname != {_names(via[p])} ether daddr set {mac} dup to "{p}"\n' for p, mac in sorted(m))
        chains.append(
            f"  chain acc{v} {{\n{prio}    fwd to ether daddr map {to_port}\n"
            f"    meta pkttype != {{ broadcast, multicast }} fwd to \"{outside}\"\n"
            f"    dup to \"{outside}\"\n{bum}    drop\n  }}\n"
        )
        bum_out = "".join(f'    ether daddr set {mac} dup to "{p}"\n' for p, mac in sorted(m))
        chains.append(
            f"  chain accout{v} {{\n"
            f"    type filter hook ingress device \"{outside}\" priority -100; policy drop;\n"
            f"{prio}    fwd to ether daddr map {to_port}\n"
            f"    meta pkttype {{ broadcast, multicast }} jump bum{v}\n  }}\n"
        )
        chains.append(f"  chain bum{v} {{\n{bum_out}  }}\n")
    return chains


def digest_of(text: str) -> str:
    """The digest render() embedded as the table comment ("" for no table)."""
    marker = 'comment "'
    i = text.find(marker)
    return text[i + len(marker) : text.index('"', i + len(marker))] if i >= 0 else ""
