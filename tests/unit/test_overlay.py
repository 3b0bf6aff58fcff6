"""Virtual routers and links (seed 001): validation, routes, the uplink's HTB tree, live re-rating."""
from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest
import yaml

from tenet.agent.desired import desired_state
from tenet.agent.kernel.fake import FakeKernel
from tenet.agent.kernel.state import UplinkClass
from tenet.agent.reconcile import DelUplinkClass, SetUplinkClass, reconcile
from tenet.agent.translation import render
from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints
from tenet.compute.extmac import allocate
from tenet.compute.overlay import vr_routes
from tenet.compute.tables import Function
from tenet.compute.qos import DEFAULT, PARENT, TOKEN_RATE, uplink_qos
from tenet.model.errors import IntentError
from tenet.model.load import intent_to_doc, load_intent
from tenet.model.tenancy import port_name
from tenet.store import keys
from tenet.store.intent import read_intent, set_link, write_intent
from tenet.store.open import open_store

BERL = Path(__file__).parents[2] / "examples" / "berl.yaml"


def doc():
    return yaml.safe_load(BERL.read_text())


def routed_doc(site2_capacity="20mbit"):
    """Berl's two sites on two physical networks joined by one router: links cross it as VXLAN."""
    d = doc()
    d["underlay"] = {"networks": {"pn1": {"subnet": "198.19.71.0/24", "capacity": "32mbit"},
                                  "pn2": {"subnet": "198.19.72.0/24", **({"capacity": site2_capacity} if site2_capacity else {})}},
                     "routers": {"r": {"networks": ["pn1", "pn2"]}}}
    d["hosts"] = {"rm1": {"network": "pn1"}, "rm2": {"network": "pn2"}}
    return d


def problems(d):
    with pytest.raises(IntentError) as e:
        load_intent(d)
    return [f"{p.path}: {p.message}" for p in e.value.problems]


def test_routers_become_forwarding_vms_and_links_become_vns():
    i = load_intent(doc())
    a1 = next(v for v in i.vms if v.name == "a1")
    assert a1.router and [(n.network, str(n.ip)) for n in a1.nics] == [("a-site1", "10.1.1.1/24"), ("vl1", "10.255.0.1/30")]
    assert i.vn("vl1").vnid == 7100 and i.vn("vl1").tenant == "a" and i.vn("vl1").bum.value == "replicate"
    assert load_intent(intent_to_doc(i)) == i


def test_routes_follow_the_overlay_graph():
    d = doc()  # a chain a1 - a2 - a3: a1 reaches a3's site through a2
    d["networks"]["a-site3"] = {"vnid": 7103, "tenant": "a", "subnet": "10.1.3.0/24"}
    d["vrouters"]["a3"] = {"host": "rm2", "tenant": "a", "nics": [{"network": "a-site3", "ip": "10.1.3.1/24"}]}
    d["vlinks"]["vl3"] = {"between": ["a2", "a3"], "vnid": 7300, "subnet": "10.255.0.4/30"}
    routes = vr_routes(load_intent(d))
    assert dict(routes["a1"]) == {IPv4Network("10.1.2.0/24"): IPv4Address("10.255.0.2"),
                                  IPv4Network("10.1.3.0/24"): IPv4Address("10.255.0.2"),
                                  IPv4Network("10.255.0.4/30"): IPv4Address("10.255.0.2")}
    assert dict(routes["b1"]) == {IPv4Network("10.1.2.0/24"): IPv4Address("10.255.0.2")}  # tenant b: its own graph


@pytest.mark.parametrize("patch, expected", [
    (lambda d: d["vlinks"].pop("vl2"), "vrouters.b2: not joined to b1 by virtual links"),
    (lambda d: d["vlinks"]["vl1"].update(guarantee="20mbit", limit="10mbit"), "vlinks.vl1.guarantee: 20mbit is over the link's limit 10mbit"),
    (lambda d: [d["vlinks"][v].update(guarantee="20mbit") for v in ("vl1", "vl2")],
     "underlay.networks.core.capacity: guarantees (vl1 20, vl2 20) total 40 Mbit/s, over its 32 Mbit/s"),
    (lambda d: d["vlinks"]["vl1"].update(delay="10ms"), "vlinks.vl1.delay: delay needs tc netem, which this kernel lacks"),
    (lambda d: d["vlinks"]["vl1"].update(between=["a1", "b2"]), "vlinks.vl1.between: a1 (tenant a) and b2 (tenant b)"),
    (lambda d: d["vlinks"]["vl1"].update(vnid=7101), "vlinks.vl1.vnid: VN-ID 7101 is already used by a-site1"),
    (lambda d: d["vlinks"]["vl1"].update(guarantee="fast"), "vlinks.vl1.guarantee: not a rate like 50mbit: 'fast'"),
    (lambda d: d["underlay"]["networks"]["core"].pop("capacity") and d["vlinks"]["vl1"].update(guarantee="1mbit"),
     "vlinks.vl1.guarantee: physical network core has no capacity to guarantee from"),
    (lambda d: d["vrouters"]["a1"].update(host="nowhere"), "vrouters.a1.host: no hypervisor host named 'nowhere'"),
    (lambda d: d["underlay"]["networks"]["core"].pop("capacity") and d["vlinks"]["vl1"].update(limit="1mbit"),
     "vlinks.vl1.limit: physical network core has no capacity"),
])
def test_overlay_rules_name_their_path(patch, expected):
    d = doc()
    patch(d)
    assert any(p.startswith(expected) for p in problems(d)), problems(d)


def test_uplink_tree_guarantee_is_rate_limit_is_ceil():
    d = doc()
    d["vlinks"]["vl1"].update(guarantee="30mbit")
    d["vlinks"]["vl2"].update(limit="2mbit")
    q = uplink_qos(load_intent(d), "rm1")
    assert q.capacity_bps == 32_000_000 and q.default_rate_bps == 2_000_000
    assert [(c.vl, c.rate_bps, c.ceil_bps, c.ports) for c in q.classes] == [
        ("vl1", 30_000_000, 32_000_000, (port_name("a1", 1),)),
        ("vl2", TOKEN_RATE, 2_000_000, (port_name("b1", 1),))]


def test_a_limit_across_a_router_needs_capacity_on_both_networks():
    """Each end shapes only what its own host sends: an unshaped far network would leave the
    link limited one way. Refused, naming that network; a link with no limit needs nothing."""
    d = routed_doc(site2_capacity=None)
    d["vlinks"]["vl1"].update(limit="8mbit")
    assert problems(d) == ["vlinks.vl1.limit: physical network pn2 has no capacity, so its hosts' uplinks "
                           "are unshaped: the limit would not hold on what they send"]
    d["vlinks"]["vl1"].pop("limit")
    assert load_intent(d) and uplink_qos(load_intent(d), "rm2") is None


def test_a_link_across_a_router_is_encapsulated_and_classed_on_both_uplinks():
    """VXLAN between the ends (VNI = the link's VN-ID), and on each end's uplink a class capped
    by that end's own network; the VR's port carries the mark on both hosts."""
    d = routed_doc()
    d["vlinks"]["vl1"].update(guarantee="10mbit", limit="24mbit")
    intent = load_intent(d)
    for host, vr, ceil in (("rm1", "a1", 24_000_000), ("rm2", "a2", 20_000_000)):
        t = tables(intent, host)
        vl1 = t.vn("vl1")
        assert vl1.vnid == 7100 and {e.function for e in vl1.entries if not e.port} == {  # never translated
            Function.ENCAPSULATE, Function.REPLICATE}
        assert [(c.vl, c.rate_bps, c.ceil_bps, c.ports) for c in t.qos.classes if c.vl == "vl1"] == [
            ("vl1", 10_000_000, ceil, (port_name(vr, 1),))]
        ports = frozenset({port_name(vr, 1)})
        assert f'iifname "{port_name(vr, 1)}" meta priority set 7e03:10' in render(t, ports)
        assert UplinkClass("up0", 0x10, 10_000_000, ceil) in desired_state(t, ports, 1550).uplink_classes


def tables(intent, host="rm1"):
    eps = declared_endpoints(intent)
    return compute_tables(intent, eps, allocate([e.key for e in eps], {}))[host]


def test_re_rating_changes_the_class_in_place_and_nothing_else():
    intent = load_intent(doc())
    ports = frozenset(port_name(v, k) for v in ("a1", "b1") for k in (0, 1)) | {port_name("ca1", 0), port_name("cb1", 0)}
    k = FakeKernel(ports)
    reconcile(k, desired_state(tables(intent), ports, 1550))
    assert {(u.minor, u.rate_bps, u.ceil_bps) for u in k.observe().uplink_classes} == {
        (PARENT, 32_000_000, 32_000_000), (DEFAULT, 32_000_000, 32_000_000),
        (0x10, TOKEN_RATE, 32_000_000), (0x11, TOKEN_RATE, 32_000_000)}
    text = render(tables(intent), ports)
    assert f'iifname "{port_name("a1", 1)}" meta priority set 7e03:10' in text
    d = intent_to_doc(intent)
    d["vlinks"]["vl1"]["guarantee"] = "30mbit"
    ops = reconcile(k, desired_state(tables(load_intent(d)), ports, 1550))
    assert ops == [SetUplinkClass(UplinkClass("up0", 0x10, 30_000_000, 32_000_000)),
                   SetUplinkClass(UplinkClass("up0", DEFAULT, 2_000_000, 32_000_000))]
    d["underlay"]["networks"]["core"].pop("capacity")
    ops = reconcile(k, desired_state(tables(load_intent(d | {"vlinks": {
        n: {x: y for x, y in v.items() if x != "guarantee"} for n, v in d["vlinks"].items()}})), ports, 1550))
    assert ops[-1] == DelUplinkClass("up0", 0) and k.observe().uplink_classes == frozenset()


def test_set_link_is_validated_and_all_or_nothing(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    write_intent(store, load_intent(doc()))
    assert next(v for v in set_link(store, "vl1", guarantee="30mbit").vlinks if v.name == "vl1").guarantee_bps == 30_000_000
    before = store.get(keys.tenancy())
    with pytest.raises(IntentError, match="over its 32 Mbit/s"):
        set_link(store, "vl2", guarantee="10mbit")
    with pytest.raises(IntentError, match="no such virtual link"):
        set_link(store, "vl9", limit="1mbit")
    assert store.get(keys.tenancy()) == before
    edited = set_link(store, "vl1", guarantee="0", limit="2mbit")
    vl1 = next(v for v in edited.vlinks if v.name == "vl1")
    assert (vl1.guarantee_bps, vl1.limit_bps) == (0, 2_000_000)
    assert read_intent(store) == edited  # what was returned is what was written


def test_a_link_nic_keeps_its_mac_when_another_link_goes():
    """Destroying y renumbers x's and z's NICs in place (xz moves to eth0): the MAC their
    interfaces carry, and port security is keyed on, must not move with the index."""
    doc = yaml.safe_load((Path(__file__).parents[1] / "lab" / "triangle.yaml").read_text())
    before = {vm.name: {n.network: n.mac for n in vm.nics} for vm in load_intent(doc).vms}
    del doc["vrouters"]["y"]
    del doc["vlinks"]["xy"], doc["vlinks"]["yz"]
    after = {vm.name: {n.network: n.mac for n in vm.nics} for vm in load_intent(doc).vms}
    assert after["x"]["xz"] == before["x"]["xz"] and after["z"]["xz"] == before["z"]["xz"]
    assert [n.network for n in load_intent(doc).vms[0].nics] == ["xz"]  # renumbered: now the first
