"""A live migration in the tables (compute/addressing.py `moving_rows`) and in an agent's
desired kernel state (agent/desired.py `settled`, `at_both`): computed from intents alone."""
from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from tenet.agent.desired import desired_state, settled
from tenet.agent.kernel.state import BridgeFdb
from tenet.agent.translation import render, vxlan_name
from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints
from tenet.compute.extmac import allocate
from tenet.compute.routing import router_keys
from tenet.compute.tables import Function
from tenet.model.errors import IntentError
from tenet.model.load import intent_to_doc, load_intent
from tenet.model.tenancy import port_name

M = "02:73:00:00:00:10"
DOC = {
    "name": "tmigu",
    "underlay": {"networks": {"pn1": {"subnet": "198.19.31.0/24"}, "pn2": {"subnet": "198.19.32.0/24"}},
                 "routers": {"r": {"networks": ["pn1", "pn2"]}}},
    "hosts": {"h1": {"network": "pn1"}, "h2": {"network": "pn1"}, "h3": {"network": "pn1"},
              "h4": {"network": "pn2"}, "h5": {"network": "pn2"}},
    "tenants": ["acme", "globex"],
    "networks": {"blue": {"vnid": 7301, "tenant": "acme", "subnet": "10.73.0.0/24"},
                 "green": {"vnid": 7302, "tenant": "globex", "subnet": "10.73.0.0/24"},
                 "routed": {"vnid": 7303, "tenant": "acme", "subnet": "10.74.0.0/24", "forwarding": "ip"}},
    "vms": {"m": {"host": "h1", "nics": [{"network": "blue", "mac": M, "ip": "10.73.0.10/24"},
                                         {"network": "routed", "ip": "10.74.0.10/24"}]},
            "p2": {"host": "h2", "network": "blue", "ip": "10.73.0.2/24"},
            "p4": {"host": "h4", "network": "blue", "ip": "10.73.0.4/24"},
            "iso": {"host": "h3", "network": "green", "mac": M, "ip": "10.73.0.10/24"}},
}
IPS = {"h1": "198.19.31.10", "h2": "198.19.31.11", "h3": "198.19.31.12", "h4": "198.19.32.10", "h5": "198.19.32.11"}


def tables(to: str = "", host: str = "h1"):
    doc = copy.deepcopy(DOC)
    doc["vms"]["m"]["host"] = host
    if to:
        doc["vms"]["m"]["migrating_to"] = to
    intent = load_intent(doc)
    eps = declared_endpoints(intent)
    return intent, compute_tables(intent, eps, allocate([e.key for e in eps] + router_keys(intent.vns, eps), {}))


def rows(t, host: str, vn: str = "blue", mac: str = M):
    return sorted((e.function, e.address) for e in t[host].vn(vn).entries if e.destination == mac)


def test_the_intent_names_the_destination_and_refuses_a_wrong_one():
    intent, _ = tables("h3")
    m = next(v for v in intent.vms if v.name == "m")
    assert m.migrating_to == "h3" and intent_to_doc(intent)["vms"]["m"]["migrating_to"] == "h3"
    for to, why in (("h1", "not another host"), ("h9", "no host named")):
        doc = copy.deepcopy(DOC)
        doc["vms"]["m"]["migrating_to"] = to
        with pytest.raises(IntentError, match=why):
            load_intent(doc)


def test_pre_staged_the_destination_serves_it_and_every_peer_reaches_both_hosts_by_vxlan():
    _, before = tables()
    assert rows(before, "h2") == [(Function.TRANSLATE_L2, before["h2"].vn("blue").rows(Function.TRANSLATE_L2)[0].address)]
    assert before["h3"].vn("blue") is None  # h3 had no VM of blue
    _, t = tables("h3")
    local = (Function.NO_MODIFICATION, M)
    assert rows(t, "h1") == [(Function.ENCAPSULATE, IPS["h3"]), local]
    assert rows(t, "h3") == [(Function.ENCAPSULATE, IPS["h1"]), local]  # the VN instance, pre-staged
    for peer in ("h2", "h4"):  # on the same physical network or behind the router: both by VXLAN
        assert rows(t, peer) == [(Function.ENCAPSULATE, IPS["h1"]), (Function.ENCAPSULATE, IPS["h3"])]
    ext = {r.arrival for r in before["h2"].vn("blue").reverse if r.internal == M}
    assert ext <= {r.arrival for r in t["h2"].vn("blue").reverse if r.internal == M}  # its translated frames still pass
    assert all(len(v.reverse) == len(set(v.reverse)) for h in t.values() for v in h.vns)
    assert not t["h3"].vn("routed")  # a routed VN's NIC is not doubled: it moves when the migration commits
    # the other tenant's VM with the same MAC on the destination is untouched
    assert t["h3"].vn("green") == before["h3"].vn("green")


def test_committed_the_peers_addressing_follows_the_new_host():
    _, t = tables(host="h5")  # m behind the router now
    assert rows(t, "h2") == [(Function.ENCAPSULATE, IPS["h5"])]  # it translated before
    assert rows(t, "h4")[0][0] is Function.TRANSLATE_L2  # it encapsulated before


def test_the_agent_settles_each_host_on_one_place():
    _, t = tables("h3")
    port = port_name("m", 0)
    at_src, expected = settled(t["h1"], frozenset({port, port_name("p2", 0)}))
    assert rows({"h1": at_src}, "h1") == [(Function.NO_MODIFICATION, M)] and not expected
    before, expected = settled(t["h3"], frozenset())
    assert rows({"h3": before}, "h3") == [(Function.ENCAPSULATE, IPS["h1"])] and expected == {port}
    gone, expected = settled(t["h1"], frozenset())  # the port has left: h1 points at h3
    assert rows({"h1": gone}, "h1") == [(Function.ENCAPSULATE, IPS["h3"])] and expected == {port}


def test_a_peer_sends_over_the_vns_broadcast_path_and_keeps_translating_back():
    _, t = tables("h3")
    p2 = port_name("p2", 0)
    k = desired_state(t["h2"], frozenset({p2}), 1550)
    vx = vxlan_name(7301)
    assert BridgeFdb(vx, M) in k.bridge_fdb
    assert not [f for f in k.vxlan_fdb if f.mac == M]  # no unicast remote: the group reaches both hosts
    text = render(settled(t["h2"], frozenset({p2}))[0], frozenset({p2}))
    ext = next(r.arrival for r in t["h2"].vn("blue").reverse if r.internal == M)
    assert ext in text  # m's translated frames (from h1, then h3) are still taken back


def test_an_admitted_nic_is_awaited_where_it_goes_until_its_nve_admits_it():
    """v (802.1X, behind tor1's host6) migrating to host7 behind tor2: until tor2 admits it,
    peers reach both switches, and tor2 has no row for it (its fast lane adds one on admission)."""
    from tenet.compute.endpoints import Endpoint, arrivals, arriving, reported_endpoints
    from tenet.compute.addressing import compute_tables as full
    doc = copy.deepcopy(DOC)
    doc["switches"] = {"tor1": {"network": "pn1"}, "tor2": {"network": "pn2"}}
    doc["hosts"] |= {"host6": {"switch": "tor1"}, "host7": {"switch": "tor2"}}
    doc["aaa"] = {"users": {"vm-v": {"password": "s", "network": "blue"}}}
    v = "02:73:00:00:00:20"
    doc["vms"]["v"] = {"host": "host6", "migrating_to": "host7",
                       "nics": [{"network": "blue", "mac": v, "join": "8021x", "identity": "vm-v", "password": "s"}]}
    intent = load_intent(doc)
    coming = arrivals(intent)
    assert {k: a.nve for k, a in coming.items()} == {("blue", v): "tor2"}
    at_tor1 = Endpoint(vn="blue", vm="tes-x", nic=0, mac=v, ip="", host="tor1", port="ts1")
    eps = arriving((at_tor1,), coming)
    assert [(e.host, e.moving, e.ghost) for e in eps] == [("tor1", True, False), ("tor2", True, True)]
    members = declared_endpoints(intent) + eps
    t = full(intent, members, allocate([e.key for e in members] + router_keys(intent.vns, members), {}))
    for peer in ("h2", "h4"):
        assert rows(t, peer, mac=v) == [(Function.ENCAPSULATE, ip) for ip in sorted(
            [t["tor1"].underlay_ip, t["tor2"].underlay_ip])]
    assert rows(t, "tor2", mac=v) == [] and t["tor2"].vn("blue") is not None  # the instance, no row
    awaited = [r for r in t["tor2"].vn("blue").reverse if r.internal == v]
    assert [r.local for r in awaited] == [True]  # ... but its external MAC, awaited here
    from tenet.agent.provisional import Local, merge
    admitted = Endpoint(vn="blue", vm="tes-x", nic=0, mac=v, ip="", host="tor2", port="ts2")
    merged, added = merge(t["tor2"], [Local(admitted, "", 0.0)], ())
    assert added == 1 and rows({"tor2": merged}, "tor2", mac=v) == [(Function.NO_MODIFICATION, v)]
    assert merge(t["h4"], [Local(replace(admitted, host="h4"), "", 0.0)], ())[1] == 0  # not awaited there
    at_tor2 = Endpoint(vn="blue", vm="tes-x", nic=0, mac=v, ip="", host="tor2", port="ts2")
    assert arriving((at_tor1, at_tor2), coming) == (at_tor2,)  # admitted there: that alone

    from tenet.store.records import EndpointReport
    reports = [EndpointReport(vn="blue", vnid=7301, mac=v, port="ts", host=host, session=session)
               for host, session in (("tor1", 1), ("tor2", 2))]
    picked = reported_endpoints(intent, reports, (), coming)
    assert [e.host for e in picked] == ["tor2"]  # the destination's report wins the MAC
