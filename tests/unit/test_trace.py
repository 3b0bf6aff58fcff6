"""`tenet trace` (compute/trace.py) on tables computed from real intents, for every addressing
function, checked against what the agent makes of the same tables (agent/desired.py,
agent/translation.py): the answer is what the kernel will do."""
from __future__ import annotations

import copy

import pytest

from tenet.agent.desired import FLOOD, desired_state
from tenet.agent.kernel.state import BridgeFdb, VxlanFdb
from tenet.agent.translation import render, vxlan_name
from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints
from tenet.compute.extmac import allocate
from tenet.compute.layers import with_carriers
from tenet.compute.routing import router_keys
from tenet.compute.tables import Function
from tenet.compute.trace import Snapshot, TraceError, World, trace
from tenet.compute.trace_steps import (
    Arrive, DropReason, Encapsulate, Lookup, Resolve, Rewrite, describe,
)
from tenet.model.load import load_intent
from tenet.model.tenancy import port_name

M = "02:aa:00:00:00:01"  # x1 (VN v1) and w1 (VN v2) share it, and their IP
DOC = {
    "name": "ttrc",
    "underlay": {"networks": {"pn1": {"subnet": "198.19.41.0/24"}, "pn2": {"subnet": "198.19.42.0/24"}},
                 "routers": {"r": {"networks": ["pn1", "pn2"]}}},
    "hosts": {"a": {"network": "pn1"}, "b": {"network": "pn1"}, "c": {"network": "pn2"}},
    "networks": {"v1": {"vnid": 5101, "subnet": "10.50.0.0/24", "tenant": "red"},
                 "v2": {"vnid": 5102, "subnet": "10.50.0.0/24", "tenant": "blue", "bum": "replicate"},
                 "r1": {"vnid": 7100, "subnet": "10.63.0.0/24", "forwarding": "ip", "tenant": "red"}},
    "vms": {"x1": {"host": "a", "network": "v1", "mac": M, "ip": "10.50.0.1/24"},
            "x2": {"host": "a", "network": "v1", "ip": "10.50.0.2/24"},
            "y": {"host": "b", "network": "v1", "ip": "10.50.0.3/24"},
            "z": {"host": "c", "network": "v1", "ip": "10.50.0.4/24"},
            "w1": {"host": "a", "network": "v2", "mac": M, "ip": "10.50.0.1/24"},
            "w2": {"host": "c", "network": "v2", "ip": "10.50.0.9/24"},
            "w3": {"host": "b", "network": "v2", "ip": "10.50.0.8/24"},
            "ra": {"host": "a", "network": "r1", "ip": "10.63.0.10/24"},
            "rb": {"host": "a", "network": "r1", "ip": "10.63.0.11/24"},
            "rc": {"host": "b", "network": "r1", "ip": "10.63.0.100/24"},
            "rd": {"host": "c", "network": "r1", "ip": "10.63.0.200/24"},
            "off": {"host": "c", "network": "v1", "ip": "10.50.0.5/24", "state": "stopped"}},
}


def snapshot(doc: dict = DOC) -> Snapshot:
    intent = load_intent(copy.deepcopy(doc))
    eps = with_carriers(intent, declared_endpoints(intent))
    return Snapshot(intent, compute_tables(intent, eps, allocate([e.key for e in eps] + router_keys(intent.vns, eps), {})))


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    return snapshot()


def mac(snap, vm: str) -> str:
    return next(n.mac for v in snap.intent.vms if v.name == vm for n in v.nics)


def ip(snap, host: str) -> str:
    return snap.tables[host].underlay_ip


def kernel(snap, host):
    """What host's agent installs from these tables, every port present."""
    ht = snap.tables[host]
    ports = frozenset(e.port for t in ht.vns for e in t.entries if e.port) | {r.port for t in ht.vns for r in t.routes if r.port}
    return desired_state(ht, ports, 1500), render(ht, ports)


def of(t, kind):
    return [s for s in t.steps if isinstance(s, kind)]


def test_local_delivery_stays_on_the_host(snap):
    t = trace(snap, "x1", "10.50.0.2")
    assert of(t, Resolve) == [Resolve("10.50.0.2", mac(snap, "x2"), "v1", "x2 NIC 0")]
    assert [(s.function, s.host) for s in of(t, Lookup)] == [(Function.NO_MODIFICATION, "a")]
    assert not of(t, Encapsulate) and not of(t, Rewrite) and not t.drops
    assert [(d.host, d.port, d.vm) for d in t.deliveries] == [("a", port_name("x2", 0), "x2")]
    state, _ = kernel(snap, "a")
    assert (port_name("x2", 0), "tnb5101") in state.attachments  # the port is in the VN's bridge


def test_translation_rewrites_to_external_macs_and_back(snap):
    t = trace(snap, "x1", "10.50.0.3")
    ext_y = snap.tables["a"].vn("v1").rows(Function.TRANSLATE_L2)[0].address
    ext_x1 = next(e.address for e in snap.tables["b"].vn("v1").rows(Function.TRANSLATE_L2) if e.vm == "x1")
    assert [s.function for s in of(t, Lookup)] == [Function.TRANSLATE_L2]
    out, back = of(t, Rewrite)
    assert (out.host, out.src, out.src_to, out.dst, out.dst_to, out.out) == ("a", M, ext_x1, mac(snap, "y"), ext_y, "up0")
    assert (back.host, back.src_to, back.dst_to) == ("b", M, mac(snap, "y"))
    assert of(t, Arrive) == [Arrive("b", "v1", 5101, f"external MAC {ext_y}")]
    assert not of(t, Encapsulate)
    assert [(d.host, d.port, d.src, d.dst) for d in t.deliveries] == [("b", port_name("y", 0), M, mac(snap, "y"))]
    _, nft_a = kernel(snap, "a")
    _, nft_b = kernel(snap, "b")
    assert f"{mac(snap, 'y')} : {ext_y}" in nft_a and f"{M} : {ext_x1}" in nft_a  # the out chain's maps
    assert f"{ext_y} : {mac(snap, 'y')}" in nft_b and f"{ext_x1} : {M}" in nft_b  # the in chain's


def test_vxlan_unicast_header_is_the_kernels(snap):
    t = trace(snap, "x1", "10.50.0.4")
    assert [(s.function, s.address) for s in of(t, Lookup)] == [(Function.ENCAPSULATE, ip(snap, "c"))]
    (e,) = of(t, Encapsulate)
    assert (e.vni, e.outer_src, e.outer_dst, e.udp_port, e.group, e.device) == (5101, ip(snap, "a"), ip(snap, "c"), 4789, "", "tnx5101")
    assert of(t, Arrive) == [Arrive("c", "v1", 5101, "vni 5101")]
    assert [(d.host, d.port) for d in t.deliveries] == [("c", port_name("z", 0))]
    state, _ = kernel(snap, "a")
    z = mac(snap, "z")
    assert BridgeFdb("tnx5101", z) in state.bridge_fdb and VxlanFdb("tnx5101", z, e.outer_dst) in state.vxlan_fdb
    vx = next(l.vxlan for l in state.links if l.name == "tnx5101")
    assert (vx.vni, vx.local, vx.port) == (e.vni, e.outer_src, e.udp_port)


def test_broadcast_by_multicast_group_reaches_every_member_of_its_vn_only(snap):
    t = trace(snap, "x1", "ff:ff:ff:ff:ff:ff")
    group = str(snap.intent.vn("v1").group)
    assert [(s.function, s.address) for s in of(t, Lookup)] == [(Function.MULTICAST, group)]
    assert [(e.outer_dst, e.group, e.vni) for e in of(t, Encapsulate)] == [(group, group, 5101)]
    assert {(d.host, d.vm, d.vn) for d in t.deliveries} == {("a", "x2", "v1"), ("b", "y", "v1"), ("c", "z", "v1")}
    state, _ = kernel(snap, "a")
    assert next(l.vxlan for l in state.links if l.name == "tnx5101").group == group


def test_broadcast_by_head_end_replication_copies_to_each_peer(snap):
    t = trace(snap, "w1", "ff:ff:ff:ff:ff:ff")
    assert of(t, Lookup)[0].function is Function.REPLICATE
    peers = {e.outer_dst for e in of(t, Encapsulate)}
    assert peers == {ip(snap, "b"), ip(snap, "c")} and {e.group for e in of(t, Encapsulate)} == {""}
    state, _ = kernel(snap, "a")
    assert peers == {f.dst for f in state.vxlan_fdb if f.dev == vxlan_name(5102) and f.mac == FLOOD}
    assert {(d.host, d.vm, d.vn) for d in t.deliveries} == {("b", "w3", "v2"), ("c", "w2", "v2")}


def test_routed_vn_local_translated_and_encapsulated(snap):
    rt = {h: snap.tables[h].vn("r1") for h in "abc"}
    gw = rt["a"].gateway.split()[1]
    t = trace(snap, "ra", "10.63.0.11")  # rb, the same NVE
    assert [(d.host, d.vm, d.src) for d in t.deliveries] == [("a", "rb", gw)] and not of(t, Encapsulate)
    t = trace(snap, "ra", "10.63.0.100")  # rc on b: the same physical network
    assert of(t, Lookup)[0].function is Function.TRANSLATE_L2
    assert (of(t, Rewrite)[0].src_to, of(t, Rewrite)[0].dst_to, of(t, Rewrite)[0].out) == (rt["a"].router_mac, rt["b"].router_mac, "up0")
    assert [(d.host, d.vm) for d in t.deliveries] == [("b", "rc")]
    t = trace(snap, "ra", "10.63.0.200")  # rd on c: behind the router
    (e,) = of(t, Encapsulate)
    assert (e.vni, e.outer_src, e.outer_dst) == (7100, ip(snap, "a"), ip(snap, "c"))
    assert of(t, Rewrite)[0].dst_to == rt["c"].router_mac
    assert [(d.host, d.vm) for d in t.deliveries] == [("c", "rd")]
    state, _ = kernel(snap, "a")
    assert VxlanFdb(vxlan_name(7100), rt["c"].router_mac, e.outer_dst) in state.vxlan_fdb


def test_a_reused_mac_and_ip_reach_their_own_vn(snap):
    assert [(d.vm, d.vn) for d in trace(snap, "y", "10.50.0.1").deliveries] == [("x1", "v1")]
    assert [(d.vm, d.vn) for d in trace(snap, "w3", "10.50.0.1").deliveries] == [("w1", "v2")]


@pytest.mark.parametrize("vm, to, reason", [
    ("x1", "02:00:00:00:99:99", DropReason.NO_ENTRY),
    ("x1", "10.50.0.9", DropReason.UNRESOLVED),  # w2's IP, in VN v2
    ("x2", "02:aa:00:00:00:01", None),  # x1 (its own VN): delivered
    ("off", "10.50.0.1", DropReason.NOT_ATTACHED),  # a stopped VM's port is gated
    ("ra", "ff:ff:ff:ff:ff:ff", DropReason.NO_BROADCAST),
    ("ra", "10.63.0.77", DropReason.NO_ROUTE),
    ("x1", "02:aa:00:00:00:01", DropReason.SELF),
])
def test_drops_say_where_and_why(snap, vm, to, reason):
    t = trace(snap, vm, to)
    if reason is None:
        assert t.deliveries and not t.drops
        return
    assert t.drops[-1].reason is reason and not t.deliveries
    assert describe(t.drops[-1]).count("dropped") == 1


def test_unknown_unicast_is_flooded_and_taken_only_where_it_is_local(snap):
    from dataclasses import replace
    z = mac(snap, "z")
    ht = snap.tables["a"]
    v1 = ht.vn("v1")
    gone = replace(v1, entries=tuple(e for e in v1.entries if e.destination != z))
    s = replace(snap, tables={**snap.tables, "a": replace(ht, vns=tuple(gone if t.vn == "v1" else t for t in ht.vns))})
    t = trace(s, "x1", z)
    (look,) = of(t, Lookup)
    assert look.unknown and look.function is Function.MULTICAST and "no row for" in look.note
    assert [(d.host, d.vm) for d in t.deliveries] == [("c", "z")]  # b has it as translated: not local there
    assert [(d.host, d.reason) for d in t.drops] == [("b", DropReason.NOT_LOCAL)]


def test_a_mac_of_another_vn_is_named(snap):
    t = trace(snap, "x1", mac(snap, "w2"))
    assert [d.reason for d in t.drops] == [DropReason.OTHER_VN] and "VN v2" in t.drops[0].detail


@pytest.mark.parametrize("vm, to, nic, why", [
    ("nobody", "10.50.0.1", None, "no VM, server or attached TES named 'nobody'"),
    ("x1", "10.50.0.1", 3, "x1 has 1 NIC"),
    ("x1", "not-an-address", None, "neither a MAC"),
])
def test_bad_questions_are_errors(snap, vm, to, nic, why):
    with pytest.raises(TraceError, match=why):
        trace(snap, vm, to, nic)


def test_a_migrating_nic_is_reached_at_both_hosts_by_the_broadcast_path():
    from test_migration_tables import tables
    intent, t = tables("h4")
    tr = trace(Snapshot(intent, t), "p2", "02:73:00:00:00:10")
    assert "two hosts" in of(tr, Lookup)[0].note
    assert {d.host for d in tr.deliveries} == {"h1", "h4"}


def test_layered_vn_is_encapsulated_to_carriers(snap):
    from tenet.model.load import load_file
    from pathlib import Path
    intent = load_file(Path(__file__).parents[2] / "examples" / "layers.yaml")
    eps = with_carriers(intent, declared_endpoints(intent))
    s = Snapshot(intent, compute_tables(intent, eps, allocate([e.key for e in eps] + router_keys(intent.vns, eps), {})))
    w = World(s)
    upper = next(v for v in intent.vns if v.over)
    vm = next(v for v in intent.vms if v.nics[0].network == upper.name)
    peer = next(v for v in intent.vms if v.nics[0].network == upper.name and v.host != vm.host)
    t = trace(w, vm.name, peer.nics[0].mac)
    (e,) = of(t, Encapsulate)
    assert e.over == upper.over and e.vni == upper.vnid
    assert [(d.vm, d.vn) for d in t.deliveries] == [(peer.name, upper.name)]


def test_json_names_each_step(snap):
    d = trace(snap, "x1", "10.50.0.4").to_dict()
    assert [s["step"] for s in d["steps"]] == ["source", "resolve", "lookup", "encapsulate", "arrive", "deliver"]
    assert d["steps"][2]["function"] == "encapsulate"
