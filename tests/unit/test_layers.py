"""Layered VNs (seed 002, FIG. 9A): validation, carriers, tables per layer, the agent's state."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tenet.agent.desired import desired_state
from tenet.agent.kernel.fake import FakeKernel
from tenet.agent.kernel.state import Address
from tenet.agent.reconcile import reconcile
from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints
from tenet.compute.extmac import allocate
from tenet.compute.layers import with_carriers
from tenet.compute.tables import Function, from_json, to_json
from tenet.model.load import intent_to_doc, load_intent
from tenet.model.layers import carrier_mac
from test_overlay import problems

LAYERS = Path(__file__).parents[2] / "examples" / "layers.yaml"


def doc():
    return yaml.safe_load(LAYERS.read_text())


def tables(d=None):
    intent = load_intent(d or doc())
    eps = with_carriers(intent, declared_endpoints(intent))
    return intent, compute_tables(intent, eps, allocate([e.key for e in eps], {}))


def test_round_trip_keeps_the_layers():
    intent = load_intent(doc())
    assert load_intent(intent_to_doc(intent)) == intent
    assert intent.vn("peak").over == "top" and intent.vn("top").bum.value == "replicate"


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["networks"]["top"].update(over="nowhere"), "networks.top.over: no VN named 'nowhere'"),
    (lambda d: d["networks"]["base"].update(over="peak"), "layers form a cycle"),
    (lambda d: d["networks"]["top"].update(over="other"), "belongs to tenant globex, not acme"),
    (lambda d: d["networks"]["top"].update(bum="multicast"), "networks.top.bum: a layered VN replicates"),
    (lambda d: d["networks"]["base"].pop("subnet"), "base needs a subnet"),
    (lambda d: d["networks"]["base"].update(subnet="198.19.0.0/24"), "overlaps the underlay"),
    (lambda d: d["networks"]["base"].update(subnet="10.78.0.0/16"), "overlaps base (10.78.0.0/16)"),
    (lambda d: d["networks"]["base"].update(subnet="10.77.0.0/30"), "no room for a carrier address per host"),
    (lambda d: d["vms"]["b1"].update(ip="10.77.0.253/24"), "b1 uses 10.77.0.253, the carrier address of host host2"),
    (lambda d: d["networks"]["top"].update(forwarding="ip"), "layering needs MAC-based VNs"),
])
def test_bad_layering_is_refused_naming_the_cause(edit, expected):
    d = doc()
    edit(d)
    assert any(expected in p for p in problems(d)), problems(d)


def test_each_host_of_an_upper_vn_joins_the_vn_beneath_through_its_carrier():
    intent = load_intent(doc())
    eps = with_carriers(intent, declared_endpoints(intent))
    carriers = sorted((e.vn, e.host, e.ip) for e in eps if e.vm.endswith(".nve"))
    assert carriers == [  # peak is on host1 and host3 only; top everywhere
        ("base", "host1", "10.77.0.254/24"), ("base", "host2", "10.77.0.253/24"), ("base", "host3", "10.77.0.252/24"),
        ("top", "host1", "10.78.0.254/24"), ("top", "host3", "10.78.0.252/24")]


def test_tables_compose_per_layer():
    intent, t = tables()
    h1 = t["host1"]
    top, base = h1.vn("top"), h1.vn("base")
    t3 = intent.vms[[v.name for v in intent.vms].index("t3")].nics[0].mac
    assert next(e for e in top.entries if e.destination == t3).address == "10.77.0.252"  # host3's carrier
    assert top.rows(Function.REPLICATE)[0].peers == ("10.77.0.252", "10.77.0.253")
    assert top.carrier.ip == "10.77.0.254/24" and top.layer == 1 and h1.vn("peak").layer == 2
    # beneath, the carriers are ordinary members: host2's is translated, host3's encapsulated
    by_mac = {e.destination: e for e in base.entries}
    assert by_mac[carrier_mac("base", "host2")].function is Function.TRANSLATE_L2
    assert by_mac[carrier_mac("base", "host3")].address == "198.18.2.10"
    assert by_mac[carrier_mac("base", "host1")].port == "tnl7000"
    assert from_json(to_json(h1)) == h1
    assert t["host2"].vn("peak") is None and t["host2"].vn("top").carrier is not None


def test_agent_builds_carriers_and_tunnels_through_them():
    _, t = tables()
    k = FakeKernel(mtu=1650)
    desired = desired_state(t["host1"], frozenset(), 1650)
    links = {l.name: l for l in desired.links}
    assert links["tnl7000"].master == "tnb7000" and links["tnl7000"].peer_mac == carrier_mac("base", "host1")
    assert links["tnx7001"].vxlan.local == "10.77.0.254" and links["tnx7001"].vxlan.dev == "tnm7000"
    assert [links[f"tnx700{i}"].mtu for i in range(3)] == [1600, 1550, 1500]  # 50 bytes per layer
    assert Address("tnm7001", "10.78.0.254/24") in desired.addresses
    assert 'iifname "tnm7000" ip saddr { 10.77.0.252, 10.77.0.253 } udp dport 4789 @th,96,24 { 7001 } accept' \
        in desired.nft_text
    reconcile(k, desired)
    assert reconcile(k, desired) == []  # converged: carriers and addresses are observed back
    # the last layered VN leaves: its carrier, address and the lower VN's entry go
    d = doc()
    for vm in ("p1", "p3", "t1", "t2", "t3"):
        del d["vms"][vm]
    _, t2 = tables(d)
    reconcile(k, desired_state(t2["host1"], frozenset(), 1650))
    assert not k.state.addresses and not {l.name for l in k.state.links} & {"tnl7000", "tnm7000", "tnx7001"}
