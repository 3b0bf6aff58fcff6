"""The system as one graph for the web view: the underlay (physical networks, routers, hosts,
switches) and the overlay (VNs, VMs, virtual routers and links, attached TESs). Pure: intent,
host views and endpoint reports in, nodes and edges out; the page lays it out.

A tenant's view is its overlay alone: its VNs, the VMs and TESs on them, its routers and links,
and nothing of the underlay nor of anyone else (`for_tenant`).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from tenet.model.tenancy import Intent, Join
from tenet.store.inventory import HostView
from tenet.store.records import EndpointReport


class NodeKind(str, Enum):
    NETWORK = "network"  # a physical network (L2 segment)
    ROUTER = "router"  # a physical router
    HOST = "host"  # an NVE: hypervisor or access switch
    SWITCH = "switch"  # an access switch declared under `switches:` (802.1X authenticator)
    PROXY = "proxy"  # a host behind a switch's port
    SERVER = "server"  # a physical TES on the underlay
    VN = "vn"
    VM = "vm"
    VROUTER = "vrouter"
    TES = "tes"  # an attached TES no VM or server declares

    @property
    def underlay(self) -> bool:
        return self in (NodeKind.NETWORK, NodeKind.ROUTER, NodeKind.HOST, NodeKind.SWITCH, NodeKind.PROXY)


class EdgeKind(str, Enum):
    PORT = "port"  # router — physical network
    UPLINK = "uplink"  # host, switch or server — physical network
    BEHIND = "behind"  # proxy host, or server on a switch port — its switch
    PLACED = "placed"  # VM or VR — the host it runs on (or the NVE a TES attached to)
    NIC = "nic"  # VM, VR, server or TES — a VN
    VLINK = "vlink"  # VR — VR
    OVER = "over"  # a layered VN — the VN it rides on


@dataclass(frozen=True)
class Node:
    id: str
    kind: NodeKind
    name: str
    tenant: str = ""  # "": the fabric's
    info: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind.value, "name": self.name, "tenant": self.tenant, "info": dict(self.info)}


@dataclass(frozen=True)
class Edge:
    id: str
    kind: EdgeKind
    source: str
    target: str
    tenant: str = ""
    info: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind.value, "source": self.source, "target": self.target,
                "tenant": self.tenant, "info": dict(self.info)}


@dataclass(frozen=True)
class Graph:
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    endpoints: tuple[EndpointReport, ...]  # every attached TES with its grants
    scope: str = "admin"  # or the tenant's name

    def to_dict(self) -> dict:
        return {"scope": self.scope, "nodes": [n.to_dict() for n in self.nodes], "edges": [e.to_dict() for e in self.edges],
                "endpoints": [e.to_dict() for e in self.endpoints]}


def nid(kind: NodeKind, name: str) -> str:
    return f"{kind.value}:{name}"


def build(intent: Intent, hosts: Iterable[HostView], endpoints: Iterable[EndpointReport]) -> Graph:
    fabric = intent.fabric
    nodes: list[Node] = []
    edges: list[Edge] = []

    def edge(kind: EdgeKind, a: str, b: str, tenant: str = "", **info: Any) -> None:
        edges.append(Edge(f"{kind.value}:{a}|{b}", kind, a, b, tenant, info))

    for n in fabric.networks:
        nodes.append(Node(nid(NodeKind.NETWORK, n.name), NodeKind.NETWORK, n.name,
                          info={"subnet": str(n.subnet), "capacity_bps": n.capacity_bps}))
    for r in fabric.routers:
        nodes.append(Node(nid(NodeKind.ROUTER, r.name), NodeKind.ROUTER, r.name,
                          info={"ports": {p.network: str(p.address) for p in r.ports}}))
        for p in r.ports:
            edge(EdgeKind.PORT, nid(NodeKind.ROUTER, r.name), nid(NodeKind.NETWORK, p.network), address=str(p.address))
    views = {h.name: h for h in hosts}
    for h in fabric.hosts:
        kind = NodeKind.SWITCH if h.switch else NodeKind.HOST
        v = views.get(h.name)
        nodes.append(Node(nid(kind, h.name), kind, h.name, info={
            "network": h.network, "address": str(h.address), "role": h.role, "capability": h.capability,
            "state": v.state.value if v else "unknown", "published": v.published if v else 0,
            "applied": v.applied if v else 0, "agent": v.agent if v else ""}))
        edge(EdgeKind.UPLINK, nid(kind, h.name), nid(NodeKind.NETWORK, h.network), address=str(h.address))
    hid = {h.name: nid(NodeKind.SWITCH if h.switch else NodeKind.HOST, h.name) for h in fabric.hosts}
    for p in fabric.proxies:
        nodes.append(Node(nid(NodeKind.PROXY, p.name), NodeKind.PROXY, p.name, info={"switch": p.switch, "role": p.role}))
        edge(EdgeKind.BEHIND, nid(NodeKind.PROXY, p.name), hid.get(p.switch, nid(NodeKind.SWITCH, p.switch)))
        hid[p.name] = nid(NodeKind.PROXY, p.name)

    links = {vl.name: vl for vl in intent.vlinks}
    tenant_of = {vn.name: vn.tenant for vn in intent.vns}
    for vn in intent.vns:
        if vn.name in links:
            continue  # a virtual link's VN: drawn as the link
        nodes.append(Node(nid(NodeKind.VN, vn.name), NodeKind.VN, vn.name, vn.tenant, {
            "vnid": vn.vnid, "subnet": str(vn.subnet) if vn.subnet else "", "bum": vn.bum.value,
            "group": str(vn.group) if vn.group else "", "forwarding": vn.forwarding, "over": vn.over}))
        if vn.over:
            edge(EdgeKind.OVER, nid(NodeKind.VN, vn.name), nid(NodeKind.VN, vn.over), vn.tenant)

    reports = sorted(endpoints, key=lambda r: (r.vn, r.host, r.mac))
    by_mac: dict[str, list[EndpointReport]] = {}
    for r in reports:
        by_mac.setdefault(r.mac, []).append(r)
    declared: set[str] = set()
    vrs = {vr.name: vr for vr in intent.vrouters}
    for vm in intent.vms:
        kind = NodeKind.VROUTER if vm.router else NodeKind.VM
        tenant = vrs[vm.name].tenant if vm.name in vrs else next(
            (tenant_of[n.network] for n in vm.nics if n.network in tenant_of), "")
        me = nid(kind, vm.name)
        nics = []
        for i, nic in enumerate(vm.nics):
            sessions = [_session(r) for r in by_mac.get(nic.mac, ()) if r.vn == nic.network]
            declared.add(nic.mac)
            nics.append({"index": i, "network": nic.network, "mac": nic.mac, "ip": str(nic.ip) if nic.ip else "",
                         "join": nic.join.value, "attached": nic.join is Join.STATIC or bool(sessions), "sessions": sessions})
            if nic.network not in links:
                edge(EdgeKind.NIC, me, nid(NodeKind.VN, nic.network), tenant, index=i, mac=nic.mac,
                     ip=str(nic.ip) if nic.ip else "", join=nic.join.value, attached=nics[-1]["attached"])
        nodes.append(Node(me, kind, vm.name, tenant, {"host": vm.host, "state": vm.state.value,
                                                      "migrating_to": vm.migrating_to, "nics": nics}))
        edge(EdgeKind.PLACED, me, hid.get(vm.host, nid(NodeKind.HOST, vm.host)), tenant)
    for vl in intent.vlinks:
        edge(EdgeKind.VLINK, nid(NodeKind.VROUTER, vl.ends[0]), nid(NodeKind.VROUTER, vl.ends[1]), vl.tenant,
             name=vl.name, vnid=next((v.vnid for v in intent.vns if v.name == vl.name), 0), subnet=str(vl.subnet),
             guarantee_bps=vl.guarantee_bps, limit_bps=vl.limit_bps)
    for s in intent.servers:
        me, tenant = nid(NodeKind.SERVER, s.name), tenant_of.get(s.nic.network, "")
        sessions = [_session(r) for r in by_mac.get(s.nic.mac, ())]
        declared.add(s.nic.mac)
        nodes.append(Node(me, NodeKind.SERVER, s.name, tenant, {
            "uplink": s.uplink, "address": str(s.address) if s.address else "", "switch": s.switch,
            "method": s.nic.method.value, "network": s.nic.network, "mac": s.nic.mac,
            "ip": str(s.nic.ip) if s.nic.ip else "", "attached": bool(sessions), "sessions": sessions}))
        if s.on_switch:  # cabled to a switch port, like a proxy host
            edge(EdgeKind.BEHIND, me, hid.get(s.switch, nid(NodeKind.SWITCH, s.switch)))
        else:
            edge(EdgeKind.UPLINK, me, nid(NodeKind.NETWORK, s.uplink))
        edge(EdgeKind.NIC, me, nid(NodeKind.VN, s.nic.network), tenant, mac=s.nic.mac, attached=bool(sessions))
    for r in reports:
        if r.mac in declared:
            continue
        me, tenant = nid(NodeKind.TES, f"{r.mac}@{r.vn}"), tenant_of.get(r.vn, "")
        if any(n.id == me for n in nodes):
            continue  # the same TES reported by two NVEs (a migration under way): one node
        nodes.append(Node(me, NodeKind.TES, r.identity or r.mac, tenant, {"mac": r.mac, "sessions": [_session(r)]}))
        edge(EdgeKind.NIC, me, nid(NodeKind.VN, r.vn), tenant, mac=r.mac, attached=True)
        edge(EdgeKind.PLACED, me, hid.get(r.host, nid(NodeKind.HOST, r.host)), tenant)
    known = {n.id for n in nodes}
    return Graph(tuple(nodes), tuple(e for e in edges if e.source in known and e.target in known), tuple(reports))


def for_tenant(graph: Graph, tenant: str) -> Graph:
    """A tenant's view: its overlay only; its VMs keep the name of the host they run on (as
    /v1/vms shows it), but no underlay node or edge is in it."""
    nodes = tuple(n for n in graph.nodes if not n.kind.underlay and n.tenant == tenant)
    known = {n.id for n in nodes}
    edges = tuple(e for e in graph.edges if e.source in known and e.target in known)
    mine = {n.name for n in nodes if n.kind is NodeKind.VN}
    vlinks = {e.info.get("name") for e in edges if e.kind is EdgeKind.VLINK}
    return Graph(nodes, edges, tuple(r for r in graph.endpoints if r.vn in mine or r.vn in vlinks), tenant)


def _session(r: EndpointReport) -> dict:
    """One attachment of a TES as the page lists it: where, as whom, with what RADIUS granted."""
    d = r.to_dict()
    return {k: d[k] for k in ("host", "port", "vn", "session", "identity", "ip", "kind", "provisioning")}
