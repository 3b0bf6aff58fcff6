"""Addressing mode tables: for each host and each VN on it, how to reach every destination.

Pure: intent + endpoint locations + external MACs -> HostTables for every host. A host gets
tables only for the VNs it implements (those with at least one local endpoint).

Computed one VN at a time (`vn_tables`), for every host implementing it at once: a row for a
remote endpoint depends only on (endpoint, function), so it is built once and shared by every
host's table, and the work is linear in the rows produced rather than hosts x VNs x endpoints.
compute/incremental.py recomputes the same function for the VNs a change touches.
"""
from __future__ import annotations

import gc
from collections import Counter
from itertools import compress, repeat
from operator import attrgetter, ne
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace

from tenet.compute.endpoints import Endpoint
from tenet.compute.extmac import Key
from tenet.compute import routing
from tenet.compute.qos import UplinkQos, uplinks_qos
from tenet.compute.tables import (
    BROADCAST,
    Entry,
    Function,
    HostTables,
    ReverseEntry,
    Servable,
    VnTable,
)
from tenet.model.fabric import Host
from tenet.model.layers import carrier_at, layer
from tenet.model.tenancy import Bum, Intent, VirtualNetwork


def function_for(src: Host, dst: Host) -> Function:
    """The seed's choice: same host, same physical network, or behind a router."""
    if src.name == dst.name:
        return Function.NO_MODIFICATION
    if src.network == dst.network:
        return Function.TRANSLATE_L2
    return Function.ENCAPSULATE


@dataclass(frozen=True)
class IntentIndex:
    """The intent's maps every table needs, built once per intent instead of once per table."""

    hosts: Mapping[str, Host]
    ips: Mapping[str, str]  # host -> its underlay IP as the tables write it
    position: Mapping[str, int]  # host -> its place in the fabric (carrier addresses follow it)
    vns: Mapping[str, VirtualNetwork]
    order: Mapping[str, int]  # VN -> its place in the intent (a host lists its VNs in that order)
    layers: Mapping[str, int]
    serves: tuple[Servable, ...]  # the same object in every host's tables

    @classmethod
    def of(cls, intent: Intent) -> IntentIndex:
        vns = {v.name: v for v in intent.vns}
        return cls(
            hosts={h.name: h for h in intent.fabric.hosts},
            ips={h.name: str(h.ip) for h in intent.fabric.hosts},
            position={h.name: i for i, h in enumerate(intent.fabric.hosts)},
            vns=vns,
            order={v.name: i for i, v in enumerate(intent.vns)},
            layers={v.name: layer(vns, v) for v in intent.vns},
            serves=tuple(Servable(v.name, v.vnid) for v in intent.vns),
        )


def vn_tables(ix: IntentIndex, vn: VirtualNetwork, members: Iterable[Endpoint], extmacs: Mapping[Key, str],
              held: Collection[str] = ()) -> dict[str, VnTable]:
    """The VN's table on every host implementing it: its members' hosts, and the `held` ones
    (controller/hold.py) if the VN can be held. Members on hosts outside the fabric are left
    out: no table can reach them (a host that left with its endpoint reports still stored)."""
    hosts = ix.hosts
    present = sorted([m for m in members if m.host in hosts], key=attrgetter("vm", "nic"))
    if vn.forwarding == "ip":
        return routed_tables(ix, vn, present, extmacs)
    if vn.over:
        return layered_tables(ix, vn, present)
    out = bridged_tables(ix, vn, present, extmacs, [h for h in held if h in ix.hosts] if holdable(vn) else [])
    return moving_rows(ix, out, present) if any(map(attrgetter("moving"), present)) else out


def moving_rows(ix: IntentIndex, tables: dict[str, VnTable], members: list[Endpoint]) -> dict[str, VnTable]:
    """Make-before-break for a live migration: a moving NIC is a member at both its hosts.
    Every other host reaches it at both by encapsulation (agent/desired.py `at_both`: over
    the VN's broadcast path, and only the host with the port delivers), never by
    translation (a physical network's switches learn one port per external MAC). Its two
    hosts keep their local row and also reach the other location, which takes over when the
    port has gone (agent/desired.py `settled`: a local row wins while its port is there).
    The reverse rows of its external MAC stay: it still sends translated frames. Where an
    admitted NIC is awaited (a ghost, compute/endpoints.py `arriving`) its host has no entry for
    it, only a local reverse row naming its external MAC (if its network translates): its NVE's
    fast lane adds the local entry the moment it admits it."""
    moving: dict[str, list[Endpoint]] = {}
    for ep in members:
        if ep.moving:
            moving.setdefault(ep.mac, []).append(ep)
    awaited = {(ep.host, ep.mac) for ep in members if ep.ghost}
    encapsulate, ips = Function.ENCAPSULATE, ix.ips
    out = {}
    for h, t in tables.items():
        kept = tuple(e for e in t.entries if (e.destination not in moving or e.function is Function.NO_MODIFICATION)
                     and (h, e.destination) not in awaited)
        reach = tuple(Entry(mac, encapsulate, ips[ep.host], vm=ep.vm) for mac, eps in moving.items()
                      for ep in eps if ep.host != h and (h, mac) not in awaited)
        reverse = tuple(dict.fromkeys(t.reverse))
        here = {mac for host, mac in awaited if host == h}
        if here:  # awaited: one local reverse row and no entry (agent/provisional.py `merge` reads it so)
            ext = {r.internal: r.arrival for r in reverse if r.internal in here}
            reverse = tuple(r for r in reverse if r.internal not in here) + tuple(
                ReverseEntry(ext[mac], mac, True) for mac in sorted(here) if mac in ext)
        out[h] = replace(t, entries=kept + reach, reverse=reverse)
    return out


def by_host(members: list[Endpoint]) -> dict[str, list[Endpoint]]:
    out: dict[str, list[Endpoint]] = {}
    for ep in members:
        out.setdefault(ep.host, []).append(ep)
    return out


def local_row(ep: Endpoint) -> Entry:
    return Entry(ep.mac, Function.NO_MODIFICATION, ep.mac, ep.vm, ep.port, (), ep.rate_down_bps, ep.rate_up_bps,
                 ep.cos, ep.guard, ep.sources)


def tunnels_of(local: Iterable[Endpoint]) -> tuple:
    return tuple(sorted((m.tunnel for m in local if m.tunnel), key=lambda t: t.port))


def replicate_to(ips: Mapping[str, str], members: Collection[str], hosts: Iterable[str]) -> dict[str, Entry]:
    """Each host's head-end replication row: the `ips` of every member host but itself (cut
    out of the one sorted list and its joined text by slicing, not rebuilt per host)."""
    peers = tuple(sorted({ips[h] for h in members}))
    text = " ".join(peers)
    at, start = {}, 0
    for i, ip in enumerate(peers):
        at[ip], start = (i, start), start + len(ip) + 1
    out: dict[str, Entry] = {}
    everyone = None
    replicate, last = Function.REPLICATE, len(peers) - 1
    for h in hosts:
        mine = at.get(ips[h])
        if mine is None:
            everyone = everyone or Entry(BROADCAST, replicate, text, peers=peers)
            out[h] = everyone
        else:
            i, c = mine
            cut = text[:c] + text[c + len(peers[i]) + 1:] if i < last else text[:max(c - 1, 0)]
            out[h] = Entry(BROADCAST, replicate, cut, peers=peers[:i] + peers[i + 1:])
    return out


def bridged_tables(ix: IntentIndex, vn: VirtualNetwork, members: list[Endpoint], extmacs: Mapping[Key, str],
                   held: list[str]) -> dict[str, VnTable]:
    """Rows in the order local, translated, encapsulated, each by (VM, NIC). Every row is built
    once and shared: `members` come sorted, so what a network's hosts see of the others is one
    tuple (`seen`: its translated rows, then the other networks' encapsulated ones), and a host
    cuts its own rows out of it by position (slices, or a `compress` mask): nothing is filtered
    or sorted per host, and the per-host loop runs once per table, in C per row."""
    local = by_host(members)
    implementing = list(local) + [h for h in held if h not in local]
    network = {h: ix.hosts[h].network for h in implementing}
    at_net = [network[ep.host] for ep in members]
    viewers = Counter(network.values())
    on_net = Counter(at_net)
    translate = Function.TRANSLATE_L2
    # the members of each network another host on it sees: their hosts, rows and reverse rows
    translated = {n: ([], [], []) for n, k in viewers.items() if k > 1}
    for ep, n in zip(members, at_net):
        if n in translated:
            hosts, rows, back = translated[n]
            ext = extmacs[ep.vn, ep.vm, ep.nic]
            hosts.append(ep.host)
            rows.append(Entry(ep.mac, translate, ext, vm=ep.vm))
            back.append(ReverseEntry(ext, ep.mac, False))
    if len(viewers) > 1:
        encapsulate, ips = Function.ENCAPSULATE, ix.ips
        outward = [Entry(ep.mac, encapsulate, ips[ep.host], vm=ep.vm) for ep in members]
        seen = {n: (*translated[n][1], *compress(outward, map(ne, at_net, repeat(n)))) if n in translated
                else tuple(compress(outward, map(ne, at_net, repeat(n)))) for n in viewers}
    else:
        seen = {n: tuple(translated[n][1]) if n in translated else () for n in viewers}
    if vn.bum is Bum.MULTICAST:
        bum = dict.fromkeys(implementing, Entry(BROADCAST, Function.MULTICAST, str(vn.group)))
    else:
        bum = replicate_to(ix.ips, local, implementing)
    vni = (ReverseEntry(arrival=f"vni {vn.vnid}", internal="", local=False),)
    back_of = {n: vni + tuple(back) for n, (_, _, back) in translated.items()}
    group = str(vn.group) if vn.bum is Bum.MULTICAST and vn.group else ""
    tunnels = any(ep.tunnel for ep in members)
    mode, depth = vn.bum.value, ix.layers[vn.name]
    peers = underlay_peers(ix, implementing)
    out: dict[str, VnTable] = {}
    for h in implementing:
        mine, n = local.get(h, ()), network[h]
        others = seen[n]
        if n not in translated or not mine:  # no row of this network is its own
            entries, reverse = (bum[h], *map(local_row, mine), *others), back_of.get(n, vni)
        else:  # cut its own out of the network's rows, which `others` starts with
            hosts, _, returning = translated[n]
            if len(mine) == 1:
                i = hosts.index(h)
                entries = (bum[h], local_row(mine[0]), *others[:i], *others[i + 1:])
                back = (*returning[:i], *returning[i + 1:])
            else:
                keep = list(map(ne, hosts, repeat(h)))
                entries = (bum[h], *map(local_row, mine), *compress(others, keep), *others[len(keep):])
                back = tuple(compress(returning, keep))
            if on_net[n] > len(mine):  # another host on this network has a member
                back = (*[ReverseEntry(extmacs[ep.vn, ep.vm, ep.nic], ep.mac, True) for ep in mine], *back)
            reverse = vni + back
        out[h] = VnTable(
            vn=vn.name, vnid=vn.vnid, bum=mode, group=group, entries=entries, reverse=reverse,
            tunnels=tunnels_of(mine) if tunnels else (), layer=depth, underlay_peers=peers,
        )
    return out


def layered_tables(ix: IntentIndex, vn: VirtualNetwork, members: list[Endpoint]) -> dict[str, VnTable]:
    """A VN over another VN: its "physical network" is the lower VN, which every NVE of the
    VN joins through its carrier; peers are encapsulated to their carriers' addresses, and
    the lower VN's table decides in turn how those packets travel (FIG. 9A)."""
    lower = ix.vns[vn.over]
    local = by_host(members)
    carriers = {h: carrier_at(lower, h, ix.position[h], ix.layers[lower.name]) for h in local}
    at = {h: c.ip.split("/")[0] for h, c in carriers.items()}
    bum = replicate_to(at, local, local)
    outward = [(ep.host, Entry(ep.mac, Function.ENCAPSULATE, at[ep.host], vm=ep.vm)) for ep in members]
    vni = (ReverseEntry(arrival=f"vni {vn.vnid}", internal="", local=False),)
    return {h: VnTable(vn=vn.name, vnid=vn.vnid, bum=vn.bum.value, group="",
                       entries=(bum[h], *map(local_row, mine), *(e for o, e in outward if o != h)),
                       reverse=vni, layer=ix.layers[vn.name], carrier=carriers[h])
            for h, mine in local.items()}


def routed_tables(ix: IntentIndex, vn: VirtualNetwork, members: list[Endpoint],
                  extmacs: Mapping[Key, str]) -> dict[str, VnTable]:
    """An IP-based VN has no per-MAC rows: only its routing table, so that a TES covered by an
    existing aggregate leaves every other NVE's tables byte-for-byte unchanged."""
    routes = routing.routes_by_host(vn, members, ix.hosts, extmacs, function_for)
    vni = (ReverseEntry(f"vni {vn.vnid}", "", False),)
    gateway = f"{routing.gateway_ip(vn)} {routing.gateway_mac(vn)}"
    local = by_host(members)
    peers = underlay_peers(ix, local)
    return {h: VnTable(vn=vn.name, vnid=vn.vnid, bum="none", group="", entries=(), reverse=vni, forwarding="ip",
                       routes=routes[h], router_mac=extmacs[routing.router_key(vn.name, h)], gateway=gateway,
                       tunnels=tunnels_of(mine), underlay_peers=peers)
            for h, mine in local.items()}


def underlay_peers(ix: IntentIndex, hosts: Iterable[str]) -> tuple[str, ...]:
    """The underlay addresses the VN's VXLAN may come from: every host implementing it. All of
    them, even on one physical network (its hosts exchange translated frames, but BUM and a
    migrating NIC's frames still come encapsulated), and the host itself too: one tuple for
    every host's table, each agent leaves its own address out."""
    return tuple(sorted({ix.ips[h] for h in hosts}))


def host_tables(ix: IntentIndex, host: str, vns: Iterable[VnTable], qos: UplinkQos | None) -> HostTables:
    """A host's tables from its VN instances, given in the intent's order of VNs."""
    h = ix.hosts[host]
    return HostTables(host=host, underlay_ip=ix.ips[host], uplink=h.uplink, vns=tuple(vns), serves=ix.serves,
                      role=h.role, capability=h.capability, mab=h.mab, qos=qos)


def members_by_vn(endpoints: Iterable[Endpoint]) -> dict[str, tuple[Endpoint, ...]]:
    out: dict[str, list[Endpoint]] = {}
    for ep in endpoints:
        out.setdefault(ep.vn, []).append(ep)
    return {vn: tuple(eps) for vn, eps in out.items()}


def held_by_vn(held: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for host, vn in held:
        out.setdefault(vn, []).append(host)
    return out


def compute_tables(
    intent: Intent, endpoints: tuple[Endpoint, ...], extmacs: Mapping[Key, str],
    held: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, HostTables]:
    """Tables for every host of the fabric (hosts with no VN get an empty, still-valid set):
    the full recompute, the reference compute/incremental.py is tested against. `held`:
    (host, VN) instances kept although no endpoint of the VN is on the host any more
    (controller/hold.py); only bridged VNs over the underlay are ever kept. The tables carry
    no content hash: store/published.py digests what it stores."""
    ix = IntentIndex.of(intent)
    members, keep = members_by_vn(endpoints), held_by_vn(held)
    on: dict[str, list[VnTable]] = {h: [] for h in ix.hosts}
    with full_collections_paused():
        for vn in intent.vns:
            for host, table in vn_tables(ix, vn, members.get(vn.name, ()), extmacs, keep.get(vn.name, ())).items():
                on[host].append(table)
        qos = uplinks_qos(intent)
        return {h: host_tables(ix, h, tables, qos[h]) for h, tables in on.items()}


@contextmanager
def full_collections_paused() -> Iterator[None]:
    """A full recompute allocates about a million rows and tables that all live on, none of
    them cyclic garbage. CPython's full collections would rescan the growing heap again and
    again meanwhile (measured: more than half the time at 100,000 endpoints), so they wait
    until the end (bench/compute.py: `collect_after_s`; a controller that keeps the tables can
    spare even that with gc.freeze(): they are freed by refcount). The young collections go on:
    each scans a few hundred objects while they are still in the CPU's cache. Pausing the whole
    collector instead left one scan of all of them, from memory, to the first allocation after
    (0.48-0.53 s of the recompute at 100,000 endpoints against 0.38-0.44 s this way, measured
    with gc.callbacks), and a second one, of the middle generation, to some later caller."""
    young, middle, full = gc.get_threshold()
    gc.set_threshold(young, middle, 1 << 30)
    try:
        yield
    finally:
        gc.set_threshold(young, middle, full)


def holdable(vn: VirtualNetwork) -> bool:
    """A bridged VN over the underlay: its table needs no member on the host itself (a routed
    VN's router MAC and a layered VN's carrier are allocated per member host)."""
    return vn.forwarding == "mac" and not vn.over
