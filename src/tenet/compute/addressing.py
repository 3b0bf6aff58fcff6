"""Addressing mode tables: for each host and each VN on it, how to reach every destination.

Pure: intent + endpoint locations + external MACs -> HostTables for every host. A host gets
tables only for the VNs it implements (those with at least one local endpoint).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace

from tenet.compute.endpoints import Endpoint
from tenet.compute.extmac import Key
from tenet.compute import routing
from tenet.compute.qos import uplink_qos
from tenet.compute.tables import (
    BROADCAST,
    Entry,
    Function,
    HostTables,
    ReverseEntry,
    Servable,
    VnTable,
    to_json,
)
from tenet.model.fabric import Host
from tenet.model.layers import carrier, layer
from tenet.model.tenancy import Bum, Intent, VirtualNetwork



def function_for(src: Host, dst: Host) -> Function:
    """The seed's choice: same host, same physical network, or behind a router."""
    if src.name == dst.name:
        return Function.NO_MODIFICATION
    if src.network == dst.network:
        return Function.TRANSLATE_L2
    return Function.ENCAPSULATE


def vn_table(
    intent: Intent,
    vn: VirtualNetwork,
    host: Host,
    members: tuple[Endpoint, ...],
    extmacs: Mapping[Key, str],
) -> VnTable:
    hosts = {h.name: h for h in intent.fabric.hosts}
    tunnels = tuple(sorted((m.tunnel for m in members if m.tunnel and m.host == host.name), key=lambda t: t.port))
    if vn.forwarding == "ip":
        return replace(routed_table(vn, host, members, hosts, extmacs), tunnels=tunnels)
    if vn.over:
        return layered_table(intent, vn, host, members)
    entries: list[Entry] = [bum_entry(vn, host, members, hosts)]
    reverse: list[ReverseEntry] = [ReverseEntry(arrival=f"vni {vn.vnid}", internal="", local=False)]
    order = {Function.NO_MODIFICATION: 0, Function.TRANSLATE_L2: 1, Function.ENCAPSULATE: 2}
    for ep in sorted(members, key=lambda e: (order[function_for(host, hosts[e.host])], e.vm, e.nic)):
        peer = hosts[ep.host]
        fn = function_for(host, peer)
        if fn is Function.NO_MODIFICATION:
            entries.append(Entry(ep.mac, fn, ep.mac, vm=ep.vm, port=ep.port, rate_down_bps=ep.rate_down_bps,
                                 rate_up_bps=ep.rate_up_bps, cos=ep.cos))
            if any(hosts[m.host].network == host.network and m.host != host.name for m in members):
                reverse.append(ReverseEntry(extmacs[ep.key], ep.mac, local=True))
        elif fn is Function.TRANSLATE_L2:
            entries.append(Entry(ep.mac, fn, extmacs[ep.key], vm=ep.vm))
            reverse.append(ReverseEntry(extmacs[ep.key], ep.mac, local=False))
        else:
            entries.append(Entry(ep.mac, fn, str(peer.ip), vm=ep.vm))
    return VnTable(
        vn=vn.name,
        vnid=vn.vnid,
        bum=vn.bum.value,
        group=str(vn.group) if vn.bum is Bum.MULTICAST and vn.group else "",
        entries=tuple(entries),
        reverse=tuple(reverse),
        tunnels=tunnels,
        layer=layer({v.name: v for v in intent.vns}, vn),
    )


def layered_table(intent: Intent, vn: VirtualNetwork, host: Host, members: tuple[Endpoint, ...]) -> VnTable:
    """A VN over another VN: its "physical network" is the lower VN, which every NVE of the
    VN joins through its carrier; peers are encapsulated to their carriers' addresses, and
    the lower VN's table decides in turn how those packets travel (FIG. 9A)."""
    vns = {v.name: v for v in intent.vns}
    lower = vns[vn.over]
    at = {h: carrier(intent, lower, h).ip.split("/")[0] for h in {m.host for m in members}}
    peers = tuple(sorted({at[m.host] for m in members if m.host != host.name}))
    entries = [Entry(BROADCAST, Function.REPLICATE, " ".join(peers), peers=peers)]
    for ep in sorted(members, key=lambda e: (e.host != host.name, e.vm, e.nic)):
        if ep.host == host.name:
            entries.append(Entry(ep.mac, Function.NO_MODIFICATION, ep.mac, vm=ep.vm, port=ep.port,
                                 rate_down_bps=ep.rate_down_bps, rate_up_bps=ep.rate_up_bps, cos=ep.cos))
        else:
            entries.append(Entry(ep.mac, Function.ENCAPSULATE, at[ep.host], vm=ep.vm))
    return VnTable(vn=vn.name, vnid=vn.vnid, bum=vn.bum.value, group="", entries=tuple(entries),
                   reverse=(ReverseEntry(arrival=f"vni {vn.vnid}", internal="", local=False),),
                   layer=layer(vns, vn), carrier=carrier(intent, lower, host.name))


def routed_table(vn: VirtualNetwork, host: Host, members: tuple[Endpoint, ...], hosts: Mapping[str, Host],
                 extmacs: Mapping[Key, str]) -> VnTable:
    """An IP-based VN has no per-MAC rows: only its routing table, so that a TES covered by an
    existing aggregate leaves every other NVE's tables byte-for-byte unchanged."""
    return VnTable(
        vn=vn.name,
        vnid=vn.vnid,
        bum="none",
        group="",
        entries=(),
        reverse=(ReverseEntry(f"vni {vn.vnid}", "", False),),
        forwarding="ip",
        routes=routing.routes(vn, host, members, hosts, extmacs, function_for),
        router_mac=extmacs[routing.router_key(vn.name, host.name)],
        gateway=f"{routing.gateway_ip(vn)} {routing.gateway_mac(vn)}",
    )


def bum_entry(
    vn: VirtualNetwork, host: Host, members: tuple[Endpoint, ...], hosts: Mapping[str, Host]
) -> Entry:
    if vn.bum is Bum.MULTICAST:
        return Entry(BROADCAST, Function.MULTICAST, str(vn.group))
    peers = tuple(sorted({str(hosts[m.host].ip) for m in members if m.host != host.name}))
    return Entry(BROADCAST, Function.REPLICATE, " ".join(peers), peers=peers)


def compute_tables(
    intent: Intent, endpoints: tuple[Endpoint, ...], extmacs: Mapping[Key, str],
    held: frozenset[tuple[str, str]] = frozenset(),
) -> dict[str, HostTables]:
    """Tables for every host of the fabric (hosts with no VN get an empty, still-valid set).
    `held`: (host, VN) instances kept although no endpoint of the VN is on the host any more
    (controller/hold.py); only bridged VNs over the underlay are ever kept."""
    by_vn: dict[str, list[Endpoint]] = {}
    for ep in endpoints:
        by_vn.setdefault(ep.vn, []).append(ep)
    result: dict[str, HostTables] = {}
    for host in intent.fabric.hosts:
        vns = tuple(
            vn_table(intent, vn, host, tuple(by_vn.get(vn.name, ())), extmacs)
            for vn in intent.vns
            if any(ep.host == host.name for ep in by_vn.get(vn.name, ()))
            or ((host.name, vn.name) in held and holdable(vn))
        )
        tables = HostTables(
            host=host.name,
            underlay_ip=str(host.ip),
            uplink=host.uplink,
            vns=vns,
            serves=tuple(Servable(v.name, v.vnid) for v in intent.vns),
            role=host.role,
            capability=host.capability,
            mab=host.mab,
            qos=uplink_qos(intent, host.name),
        )
        result[host.name] = with_hash(tables)
    return result


def holdable(vn: VirtualNetwork) -> bool:
    """A bridged VN over the underlay: its table needs no member on the host itself (a routed
    VN's router MAC and a layered VN's carrier are allocated per member host)."""
    return vn.forwarding == "mac" and not vn.over


def instances(endpoints: tuple[Endpoint, ...]) -> frozenset[tuple[str, str]]:
    """The (host, VN) instances the endpoints need."""
    return frozenset((ep.host, ep.vn) for ep in endpoints)


def with_hash(tables: HostTables) -> HostTables:
    """Stamp a digest of the content (generation excluded) so publishers skip no-op writes."""
    body = to_json(replace(tables, generation=0, content_hash=""))
    return replace(tables, content_hash=hashlib.sha256(body.encode()).hexdigest()[:16])
