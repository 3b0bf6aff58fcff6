"""Where a frame goes, answered from the published tables alone (like `ovn-trace`). Pure.

The walk follows what each agent makes of its tables, through the agent's own pure functions:
a live migration's two rows are settled as agent/desired.py `settled` and `at_both` settle
them, translated frames meet the maps agent/translation.py `vn_maps` gives its nftables chains,
encapsulated ones the VXLAN devices and FDB desired_state builds (VNI = VN-ID, the host's
underlay or carrier address, the VN's group). A trace is therefore what the kernels will do
with these tables, not a second reading of them. Ports the tables name are taken as present
(the hypervisor creates them; a missing one is the agent's to report, not the tables').
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network

from tenet.agent.desired import at_both, settled
from tenet.agent.translation import VnMaps, vn_maps, vxlan_name
from tenet.compute.routing import DELIVER, Route
from tenet.compute.tables import BROADCAST, Entry, Function, HostTables, VnTable
from tenet.compute.trace_steps import (
    Arrive, Deliver, Drop, DropReason, Encapsulate, Lookup, Resolve, Rewrite, Source, Step, Trace, describe,
)
from tenet.model.tenancy import Intent, Nic, VmState

BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


class TraceError(ValueError):
    """A question trace cannot ask: no such VM or NIC, a destination that is no MAC or IP."""


@dataclass(frozen=True)
class Snapshot:
    """What trace and verify read: every host's published tables, the intent (where each VM's
    NIC sits, the hosts' physical networks), and attached TESs' IPs, (VN, IP) -> MAC."""

    intent: Intent
    tables: Mapping[str, HostTables]
    addresses: Mapping[tuple[str, str], str] = field(default_factory=dict)


class World:
    """The snapshot indexed once for many traces (verify runs one per pair of endpoints)."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.network = {h.name: h.network for h in snap.intent.fabric.hosts}
        self.tables: dict[str, HostTables] = {}
        self.ports: dict[str, frozenset[str]] = {}
        for h, ht in snap.tables.items():
            present = frozenset({e.port for t in ht.vns for e in t.entries if e.port}
                                | {r.port for t in ht.vns for r in t.routes if r.port})
            self.tables[h] = settled(ht, present)[0]  # every port present: a moving NIC is local at both
            self.ports[h] = present
        self.underlay = {ht.underlay_ip: h for h, ht in self.tables.items()}
        self.carriers = {(t.carrier.vn, t.carrier.ip.split("/")[0]): h
                         for h, ht in self.tables.items() for t in ht.vns if t.carrier}
        self._maps: dict[tuple[str, str], VnMaps | None] = {}
        self.names = {(n.network, n.mac): v.name for v in snap.intent.vms for n in v.nics}

    def vm_of(self, t: VnTable, mac: str) -> str:
        """The VM a MAC of the VN is: its row's name, else the intent's (routed rows have none)."""
        return next((e.vm for e in t.entries if e.destination == mac), "") or self.names.get((t.vn, mac), "")

    def maps(self, host: str, t: VnTable) -> VnMaps | None:
        key = (host, t.vn)
        if key not in self._maps:
            self._maps[key] = vn_maps(t, self.ports[host])
        return self._maps[key]

    def table(self, host: str, vn: str) -> VnTable | None:
        ht = self.tables.get(host)
        return ht.vn(vn) if ht else None

    def sources(self, vn: str, mac: str) -> list[tuple[str, str]]:
        """(host, port) of every place the VN's tables have `mac` as a local TES."""
        out = []
        for h, ht in self.tables.items():
            t = ht.vn(vn)
            if t is None:
                continue
            out += [(h, e.port) for e in t.rows(Function.NO_MODIFICATION) if e.destination == mac]
            out += [(h, r.port) for r in t.routes if r.function == DELIVER and r.address == mac]
        return out

    def vns_with(self, mac: str, but: str) -> list[str]:
        """Other VNs with a TES of that MAC (tenants may reuse MACs)."""
        return sorted({t.vn for ht in self.tables.values() for t in ht.vns if t.vn != but
                       and any(e.destination == mac for e in t.rows(Function.NO_MODIFICATION))})


def parse_destination(text: str) -> tuple[str, str]:
    """("mac", MAC) or ("ip", IP): TraceError for anything else."""
    t = text.strip().lower().replace("-", ":")
    if _MAC.match(t):
        return "mac", t
    try:
        return "ip", str(IPv4Address(t.split("/")[0]))
    except ValueError:
        raise TraceError(f"--to {text!r} is neither a MAC (aa:bb:cc:dd:ee:ff) nor an IPv4 address") from None


def trace(snap: Snapshot | World, vm: str, to: str, nic: int | None = None) -> Trace:
    """The frame `vm`'s NIC `nic` (default its first) sends to `to`, a MAC (broadcast too) or IP."""
    w = snap if isinstance(snap, World) else World(snap)
    kind, dest = parse_destination(to)
    source, why = _source(w, vm, nic)
    if why:
        return Trace(dest, (source, Drop(source.host, DropReason.NOT_ATTACHED, why)))
    if kind == "ip":
        return Trace(dest, (source, *walk(w, source, ip=dest)))
    return Trace(dest, (source, *walk(w, source, mac=dest)))


def _nics(intent: Intent, vm: str) -> tuple[tuple[Nic, ...], str, VmState] | None:
    for v in intent.vms:
        if v.name == vm:
            return v.nics, v.host, v.state
    for s in intent.servers:
        if s.name == vm:
            return (s.nic,), "", VmState.RUNNING
    return None


def _source(w: World, vm: str, nic: int | None) -> tuple[Source, str]:
    found = _nics(w.snap.intent, vm)
    if found is None:  # an auto-attached TES is named in the tables only (tes-<mac>)
        rows = [(h, t, e) for h, ht in w.tables.items() for t in ht.vns for e in t.rows(Function.NO_MODIFICATION)
                if e.vm == vm]
        if not rows:
            raise TraceError(f"no VM, server or attached TES named {vm!r}")
        h, t, e = rows[0]
        return Source(vm, 0, e.destination, t.vn, t.vnid, h, e.port, t.forwarding), ""
    nics, home, state = found
    i = 0 if nic is None else nic
    if not 0 <= i < len(nics):
        raise TraceError(f"{vm} has {len(nics)} NIC(s): no NIC {i}")
    n = nics[i]
    vn = next((v for v in w.snap.intent.vns if v.name == n.network), None)
    vnid, forwarding = (vn.vnid, vn.forwarding) if vn else (0, "mac")
    at = sorted(w.sources(n.network, n.mac), key=lambda hp: hp[0] != home)
    if not at:
        why = f"{vm} is {state.value}: its NVE gates its ports" if state is not VmState.RUNNING else \
            f"no host's table of VN {n.network} has {vm}'s NIC {i} ({n.mac}) as a local TES"
        return Source(vm, i, n.mac, n.network, vnid, home, "", forwarding), why
    h, port = at[0]
    return Source(vm, i, n.mac, n.network, vnid, h, port, forwarding), ""


def walk(w: World, src: Source, mac: str = "", ip: str = "") -> list[Step]:
    """The steps after the source, for a destination MAC or IP (one of them)."""
    t = w.table(src.host, src.vn)
    assert t is not None, "a source comes from its host's table"
    if t.forwarding == "ip":
        return _routed(w, src, t, mac, ip)
    steps: list[Step] = []
    if ip:
        resolved = _resolve(w, src.vn, ip)
        if not resolved:
            elsewhere = sorted({k[0] for k in _ip_members(w.snap, ip) if k[0] != src.vn})
            more = f" (VN {', '.join(elsewhere)} has it: another tenant's)" if elsewhere else ""
            return [Drop(src.host, DropReason.UNRESOLVED,
                         f"no endpoint of VN {src.vn} has {ip}{more}: its ARP request goes unanswered")]
        mac, by = resolved
        steps.append(Resolve(ip, mac, src.vn, by))
    if mac == src.mac:
        return steps + [Drop(src.host, DropReason.SELF, f"{mac} is the source's own MAC")]
    if _bum(mac):
        return steps + _flood(w, src, t, (src.mac, mac), None)
    rows = [e for e in t.entries if e.destination == mac]
    frame = (src.mac, mac)
    if not rows:
        other = w.vns_with(mac, src.vn)
        if other:
            return steps + [Drop(src.host, DropReason.OTHER_VN,
                                 f"{mac} is a TES of VN {', '.join(other)}, not of {src.vn}: no row of {src.vn} "
                                 "reaches it (flooded as unknown unicast within the VN, nobody takes it)")]
        note = f"{src.host}'s table of VN {src.vn} has no row for {mac}: the bridge floods it as unknown unicast"
        flood = _flood(w, src, t, frame, mac)
        steps += [replace(_bum_lookup(src, t, mac, note), unknown=True), *flood[1:]]
        if not any(isinstance(s, Deliver) for s in flood):
            steps.append(Drop(src.host, DropReason.NO_ENTRY, f"no TES of VN {src.vn} has {mac}"))
        return steps
    local = [e for e in rows if e.function is Function.NO_MODIFICATION]
    if local:
        e = local[0]
        steps.append(Lookup(src.host, src.vn, mac, Function.NO_MODIFICATION, e.address))
        return steps + [Deliver(src.host, t.vn, t.vnid, e.port, e.destination, e.vm, *frame)]
    e = rows[0]
    if e.function is Function.TRANSLATE_L2:
        maps = w.maps(src.host, t)
        mine = {i: x for x, i in maps.local_in} if maps else {}
        if maps is None or src.mac not in mine or mac not in dict(maps.peer_out):
            note = (f"the translation rule does not match ({src.mac} has no external MAC on {src.host}): "
                    "the bridge floods it as unknown unicast")
            return steps + [replace(_bum_lookup(src, t, mac, note), unknown=True)] + _flood(w, src, t, frame, mac)[1:]
        steps.append(Lookup(src.host, src.vn, mac, Function.TRANSLATE_L2, e.address))
        steps.append(Rewrite(src.host, src.mac, mine[src.mac], mac, e.address, w.tables[src.host].uplink))
        return steps + _translated_in(w, src.host, (mine[src.mac], e.address))
    if e.function is Function.ENCAPSULATE:
        if mac in at_both(t):
            note = f"{mac} is reached at two hosts (a live migration): its frames take the VN's broadcast path"
            return steps + [_bum_lookup(src, t, mac, note)] + _flood(w, src, t, frame, mac, local=False)[1:]
        steps.append(Lookup(src.host, src.vn, mac, Function.ENCAPSULATE, e.address))
        return steps + _vxlan(w, src.host, t, e.address, frame, mac)
    return steps + [Drop(src.host, DropReason.NO_ENTRY, f"row {e.function.value} for unicast {mac}")]


def _bum(mac: str) -> bool:
    return mac == BROADCAST_MAC or int(mac[:2], 16) & 1 == 1


def _bum_row(t: VnTable) -> Entry | None:
    return next((e for e in t.entries if e.destination == BROADCAST), None)


def _bum_lookup(src: Source, t: VnTable, dest: str, note: str = "") -> Lookup:
    e = _bum_row(t)
    if e is None:
        return Lookup(src.host, src.vn, dest, Function.REPLICATE, "", note=(note + "; " if note else "") + "no BUM row")
    return Lookup(src.host, src.vn, dest, e.function, e.address, note=note)


def _flood(w: World, src: Source, t: VnTable, frame: tuple[str, str], only: str | None,
           local: bool = True) -> list[Step]:
    """The VN's bridge floods: its local ports (`local`: unknown unicast and broadcast, not a
    frame the bridge sends to its VXLAN port), then the VXLAN device's BUM path. `only`: a
    unicast MAC, delivered only where it is a local TES."""
    steps: list[Step] = [_bum_lookup(src, t, frame[1])]
    if local:
        steps += [Deliver(src.host, t.vn, t.vnid, e.port, e.destination, e.vm, *frame)
                  for e in t.rows(Function.NO_MODIFICATION)
                  if e.destination != src.mac and e.port != src.port and only in (None, e.destination)]
    row = _bum_row(t)
    if row is None:
        return steps
    if row.function is Function.MULTICAST:
        g = row.address
        steps.append(Encapsulate(src.host, vxlan_name(t.vnid), t.vnid, _outer_src(w, src.host, t), g, group=g))
        joined = [h for h, ht in w.tables.items() if h != src.host and any(x.group == g for x in ht.vns)]
        for h in sorted(joined):
            steps += _vxlan_in(w, h, t.vnid, frame, only)
        return steps
    for peer in row.peers:
        steps += _vxlan(w, src.host, t, peer, frame, only)
    return steps


def _outer_src(w: World, host: str, t: VnTable) -> str:
    return t.carrier.ip.split("/")[0] if t.carrier else w.tables[host].underlay_ip


def _vxlan(w: World, host: str, t: VnTable, to: str, frame: tuple[str, str], only: str | None) -> list[Step]:
    over = t.carrier.vn if t.carrier else ""
    steps: list[Step] = [Encapsulate(host, vxlan_name(t.vnid), t.vnid, _outer_src(w, host, t), to, over=over)]
    peer = w.carriers.get((over, to)) if over else w.underlay.get(to)
    if peer is None:
        where = f"on VN {over}" if over else "on the underlay"
        return steps + [Drop(host, DropReason.NO_HOST, f"no host has address {to} {where}")]
    return steps + _vxlan_in(w, peer, t.vnid, frame, only)


def _vxlan_in(w: World, host: str, vni: int, frame: tuple[str, str], only: str | None) -> list[Step]:
    """The kernel hands a VXLAN packet to the device of its VNI, whose bridge delivers it."""
    t = next((x for x in w.tables[host].vns if x.vnid == vni), None)
    if t is None:
        return [Drop(host, DropReason.NO_VNI, f"{host} implements no VN with VNI {vni}")]
    steps: list[Step] = [Arrive(host, t.vn, vni, f"vni {vni}")]
    if t.forwarding == "ip":
        return steps + [Drop(host, DropReason.NOT_LOCAL, f"VN {t.vn} is IP-based: its VXLAN device takes only "
                                                         f"frames to its router MAC {t.router_mac}")]
    rows = [e for e in t.rows(Function.NO_MODIFICATION) if only in (None, e.destination)]
    if only is not None and not rows:
        how = next((e.function.value for e in t.entries if e.destination == only), "no row")
        return steps + [Drop(host, DropReason.NOT_LOCAL,
                             f"{only} is not a local TES of VN {t.vn} on {host} ({how}): the bridge does not send "
                             f"it back out of {vxlan_name(vni)}")]
    return steps + [Deliver(host, t.vn, vni, e.port, e.destination, e.vm, *frame) for e in rows]


def _translated_in(w: World, host: str, frame: tuple[str, str]) -> list[Step]:
    """A translated frame on the physical network: the host whose uplink claims the external
    destination MAC (its `uplink_in` dispatch) restores it, if it knows the source as a peer."""
    src_ext, dst_ext = frame
    net = w.network.get(host)
    claims = [(h, t, m) for h, ht in sorted(w.tables.items()) if h != host and w.network.get(h) == net
              for t in ht.vns if (m := w.maps(h, t)) is not None and dst_ext in dict(m.local_in)]
    if not claims:
        return [Drop(host, DropReason.NO_HOST, f"no host on physical network {net} claims external MAC {dst_ext}")]
    by_host = {h for h, _, _ in claims}
    if len(claims) > 1:
        return [Drop(host, DropReason.CONFLICT, f"external MAC {dst_ext} is claimed by "
                                                f"{', '.join(f'{h} ({t.vn})' for h, t, _ in claims)}"
                                                + (": nftables refuses the duplicate key" if len(by_host) == 1 else ""))]
    h, t, m = claims[0]
    steps: list[Step] = [Arrive(h, t.vn, t.vnid, f"external MAC {dst_ext}")]
    peers = dict(m.peer_in)
    if src_ext not in peers:
        return steps + [Drop(h, DropReason.UNKNOWN_SOURCE,
                             f"{src_ext} is no peer of VN {t.vn} in {h}'s reverse table: vn{t.vnid}_in drops it")]
    dst = dict(m.local_in)[dst_ext]
    port = m.port_of[dst]
    vm = next((e.vm for e in t.rows(Function.NO_MODIFICATION) if e.destination == dst), "")
    return steps + [Rewrite(h, src_ext, peers[src_ext], dst_ext, dst, port),
                    Deliver(h, t.vn, t.vnid, port, dst, vm, peers[src_ext], dst)]


def _resolve(w: World, vn: str, ip: str) -> tuple[str, str] | None:
    for v in w.snap.intent.vms:
        for i, n in enumerate(v.nics):
            if n.network == vn and n.ip is not None and str(n.ip.ip) == ip:
                return n.mac, f"{v.name} NIC {i}"
    for s in w.snap.intent.servers:
        if s.nic.network == vn and s.nic.ip is not None and str(s.nic.ip.ip) == ip:
            return s.nic.mac, f"server {s.name}"
    mac = w.snap.addresses.get((vn, ip))
    return (mac, "an attached TES") if mac else None


def _ip_members(snap: Snapshot, ip: str) -> list[tuple[str, str]]:
    out = [(n.network, n.mac) for v in snap.intent.vms for n in v.nics if n.ip is not None and str(n.ip.ip) == ip]
    return out + [k for k, _ in snap.addresses.items() if k[1] == ip]


def _routed(w: World, src: Source, t: VnTable, mac: str, ip: str) -> list[Step]:
    """An IP-based VN: the TES sends to the anycast gateway; the routing table decides."""
    steps: list[Step] = []
    if mac and _bum(mac):
        return [Drop(src.host, DropReason.NO_BROADCAST,
                     f"VN {t.vn} is IP-based: its NVE answers ARP as the anycast gateway, nothing is flooded")]
    if mac:
        found = [r.prefix.split("/")[0] for ht in w.tables.values() for x in ht.vns if x.vn == t.vn
                 for r in x.routes if r.function == DELIVER and r.address == mac]
        if not found:
            return [Drop(src.host, DropReason.UNRESOLVED, f"no host route of VN {t.vn} leads to {mac}")]
        ip = found[0]
        steps.append(Resolve(mac, ip, t.vn, "a host route"))
    gw = t.gateway.split()[1] if t.gateway else ""
    r = _longest(t.routes, ip)
    if r is None:
        return steps + [Drop(src.host, DropReason.NO_ROUTE, f"{src.host}'s routing table of VN {t.vn} has no route to {ip}")]
    if r.function == DELIVER:
        if r.address == src.mac:
            return steps + [Drop(src.host, DropReason.SELF, f"{ip} is the source's own address")]
        steps.append(Lookup(src.host, t.vn, ip, Function.NO_MODIFICATION, r.address, r.prefix))
        steps.append(Rewrite(src.host, src.mac, gw, gw, r.address, r.port))
        return steps + [Deliver(src.host, t.vn, t.vnid, r.port, r.address, w.vm_of(t, r.address), gw, r.address)]
    fn = Function(r.function)
    steps.append(Lookup(src.host, t.vn, ip, fn, r.address, r.prefix))
    up = w.tables[src.host].uplink
    steps.append(Rewrite(src.host, src.mac, t.router_mac, gw, r.mac, up if fn is Function.TRANSLATE_L2 else vxlan_name(t.vnid)))
    if fn is Function.TRANSLATE_L2:
        net = w.network.get(src.host)
        claims = [(h, x) for h, ht in sorted(w.tables.items()) if h != src.host and w.network.get(h) == net
                  for x in ht.vns if x.forwarding == "ip" and x.router_mac == r.mac]
        if not claims:
            return steps + [Drop(src.host, DropReason.NO_HOST, f"no host on physical network {net} has router MAC {r.mac}")]
        h, x = claims[0]
        steps.append(Arrive(h, x.vn, x.vnid, f"router MAC {r.mac}"))
        return steps + _route_in(w, h, x, ip, (t.router_mac, r.mac))
    steps.append(Encapsulate(src.host, vxlan_name(t.vnid), t.vnid, w.tables[src.host].underlay_ip, r.address))
    h = w.underlay.get(r.address)
    if h is None:
        return steps + [Drop(src.host, DropReason.NO_HOST, f"no host has address {r.address} on the underlay")]
    x = next((v for v in w.tables[h].vns if v.vnid == t.vnid), None)
    if x is None:
        return steps + [Drop(h, DropReason.NO_VNI, f"{h} implements no VN with VNI {t.vnid}")]
    steps.append(Arrive(h, x.vn, x.vnid, f"vni {x.vnid}"))
    if x.forwarding != "ip" or x.router_mac != r.mac:
        return steps + [Drop(h, DropReason.NOT_LOCAL, f"{r.mac} is not {h}'s router MAC of VN {x.vn}")]
    return steps + _route_in(w, h, x, ip, (t.router_mac, r.mac))


def _route_in(w: World, host: str, t: VnTable, ip: str, frame: tuple[str, str]) -> list[Step]:
    """Another NVE's frame to our router MAC: the host routes of its VN (`ipvn<vnid>_in`)."""
    r = next((r for r in t.routes if r.function == DELIVER and r.prefix == f"{ip}/32"), None)
    if r is None:
        return [Drop(host, DropReason.NO_ROUTE, f"{host} has no host route to {ip} in VN {t.vn}")]
    gw = t.gateway.split()[1] if t.gateway else ""
    return [Rewrite(host, frame[0], gw, frame[1], r.address, r.port),
            Deliver(host, t.vn, t.vnid, r.port, r.address, w.vm_of(t, r.address), gw, r.address)]


def _longest(routes: Iterable[Route], ip: str) -> Route | None:
    a = IPv4Address(ip)
    best = None
    for r in routes:
        n = IPv4Network(r.prefix)
        if a in n and (best is None or n.prefixlen > best[0]):
            best = (n.prefixlen, r)
    return best[1] if best else None


__all__ = ["Arrive", "Deliver", "Drop", "DropReason", "Encapsulate", "Lookup", "Resolve", "Rewrite", "Snapshot",
           "Source", "Step", "Trace", "TraceError", "World", "describe", "parse_destination", "trace",
           "walk"]
