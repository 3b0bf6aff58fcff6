"""Port security: declared in the topology, carried by endpoints and local rows, rendered as
the agent's nftables chains."""
from __future__ import annotations

from dataclasses import replace

import pytest

from tenet.agent import port_security as ps
from tenet.agent.translation import render
from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import admitted_guards, declared_endpoints, report_endpoint, reported_endpoints
from tenet.compute.port_security import Guard, split
from tenet.compute.routing import Route
from tenet.compute.tables import Entry, Function, HostTables, VnTable, from_json, to_json, vn_from_json, vn_to_json
from tenet.model.errors import IntentError
from tenet.model.load import intent_to_doc, load_intent
from tenet.model.tenancy import port_name
from tenet.store.records import EndpointReport


def doc(**vms):
    return {
        "name": "ps",
        "underlay": {"networks": {"pn1": {"subnet": "198.18.90.0/24"}}},
        "hosts": {"a": {"network": "pn1"}, "b": {"network": "pn1"}},
        "tenants": ["red"],
        "networks": {"red": {"vnid": 900, "tenant": "red", "subnet": "10.9.0.0/24", "subnet6": "fd00:9::/64"},
                     "green": {"vnid": 901, "tenant": "red", "subnet": "10.8.0.0/24"}},
        "vms": vms or {"x": {"host": "a", "network": "red", "ip": "10.9.0.1", "ip6": "fd00:9::1"}},
    }


def problems(d) -> list[str]:
    with pytest.raises(IntentError) as e:
        load_intent(d)
    return [str(p) for p in e.value.problems]


def test_a_nic_sends_from_its_addresses_and_what_it_is_allowed():
    intent = load_intent(doc(x={"host": "a", "network": "red", "ip": "10.9.0.1", "ip6": "fd00:9::1",
                                "allowed": ["10.9.0.100", "192.0.2.0/24", "fd00:9::100"]},
                             y={"host": "b", "network": "red", "ip": "10.9.0.2", "port_security": False},
                             z={"host": "b", "network": "red"}))
    eps = {e.vm: e for e in declared_endpoints(intent)}
    assert eps["x"].guard is Guard.ON
    assert eps["x"].sources == ("10.9.0.1", "fd00:9::1", "10.9.0.100/32", "192.0.2.0/24", "fd00:9::100/128")
    assert eps["y"].guard is Guard.OFF and eps["y"].sources == ()
    assert eps["z"].guard is Guard.ON and eps["z"].sources == ()  # no address: its MAC alone
    again = load_intent(intent_to_doc(intent))  # the canonical document keeps both keys
    assert again.vms == intent.vms


def test_a_virtual_router_may_send_from_its_tenants_prefixes():
    d = doc()
    d["vrouters"] = {"gw": {"host": "a", "tenant": "red", "nics": [{"network": "red", "ip": "10.9.0.254"},
                                                                   {"network": "green", "ip": "10.8.0.254"}]}}
    eps = [e for e in declared_endpoints(load_intent(d)) if e.vm == "gw"]
    assert {e.guard for e in eps} == {Guard.ROUTER}
    assert all({"10.9.0.0/24", "fd00:9::/64", "10.8.0.0/24"} <= set(e.sources) for e in eps)


@pytest.mark.parametrize("spec, says", [
    ({"allowed": ["10.9.0.0/33"]}, "allowed[0]: not an address or prefix"),
    ({"allowed": ["10.9.0.1/24"]}, "has host bits set"),
    ({"allowed": [5]}, "quote it"),
    ({"allowed": ["224.0.0.5"]}, "cannot be a source address"),
    ({"allowed": ["10.9.0.7", "10.9.0.7/32"]}, "listed twice"),
    ({"port_security": "no"}, "port_security: must be true or false"),
    ({"port_security": False, "allowed": ["10.9.0.7"]}, "port_security: false already allows every source"),
])
def test_a_wrong_declaration_is_named(spec, says):
    found = problems(doc(x={"host": "a", "network": "red", "ip": "10.9.0.1", **spec}))
    assert any(says in p for p in found), found


def test_a_tes_sends_from_the_address_it_reported_or_was_granted():
    r = EndpointReport(vn="red", vnid=900, mac="02:00:00:00:00:07", port="tpx", host="a", ip="10.9.0.7/24")
    assert report_endpoint(r).sources == ("10.9.0.7",)
    assert report_endpoint(replace(r, ip="")).sources == ()


def test_an_admitted_nic_keeps_what_it_was_declared_to_send_from():
    d = doc(t={"host": "a", "nics": [{"network": "red", "mac": "02:00:00:00:00:07", "ip": "10.9.0.7", "join": "discover",
                                      "identity": "tess", "password": "pw", "allowed": ["10.9.0.70"]}]},
            u={"host": "a", "nics": [{"network": "red", "mac": "02:00:00:00:00:08", "join": "discover",
                                      "identity": "uma", "password": "pw", "port_security": False}]})
    intent = load_intent(d)
    guards = admitted_guards(intent)
    r = EndpointReport(vn="red", vnid=900, mac="02:00:00:00:00:07", port="tpx", host="a", ip="10.9.0.9/24")
    u = replace(r, mac="02:00:00:00:00:08", ip="10.9.0.8/24")
    got = {e.mac: e for e in reported_endpoints(intent, [r, u], guards=guards)}
    assert got[r.mac].sources == ("10.9.0.9", "10.9.0.7", "10.9.0.70/32") and got[r.mac].guard is Guard.ON
    assert (got[u.mac].guard, got[u.mac].sources) == (Guard.OFF, ())


def test_rows_carry_it_and_the_stored_tables_keep_it():
    intent = load_intent(doc(x={"host": "a", "network": "red", "ip": "10.9.0.1", "allowed": ["10.9.0.100"]},
                             y={"host": "b", "network": "red", "ip": "10.9.0.2", "port_security": False}))
    tables = compute_tables(intent, declared_endpoints(intent), {("red", "x", 0): "06:74:6e:00:00:01",
                                                                 ("red", "y", 0): "06:74:6e:00:00:02"})
    local = tables["a"].vn("red").rows(Function.NO_MODIFICATION)[0]
    assert (local.guard, local.sources) == (Guard.ON, ("10.9.0.1", "10.9.0.100/32"))
    assert tables["b"].vn("red").rows(Function.NO_MODIFICATION)[0].guard is Guard.OFF
    for t in tables.values():
        assert from_json(to_json(t)) == t
        for v in t.vns:
            assert vn_from_json(vn_to_json(v)) == v
    assert '"guard"' not in vn_to_json(tables["a"].vn("red")).decode()  # the default is not stored


def test_the_link_local_address_is_the_one_the_kernel_derives():
    assert str(ps.link_local("02:71:00:00:00:01")) == "fe80::71:ff:fe00:1"
    assert str(ps.link_local("52:54:00:12:34:56")) == "fe80::5054:ff:fe12:3456"


def test_split_writes_addresses_bare_and_prefixes_whole():
    assert split(("10.9.0.1", "10.9.0.100/32", "10.8.0.0/24", "fd00:9::1", "fd00:9::/64")) == (
        ["10.9.0.1", "10.9.0.100", "10.8.0.0/24"], ["fd00:9::1", "fd00:9::/64"])


def _tables(*entries: Entry, routes: tuple[Route, ...] = ()) -> HostTables:
    vns = (VnTable("red", 900, "multicast", "239.0.3.132", entries, ()),)
    if routes:
        vns += (VnTable("ip", 902, "none", "", (), (), forwarding="ip", routes=routes,
                        gateway="10.7.0.1 06:74:6e:ff:00:01", router_mac="06:74:6e:ff:00:02"),)
    return HostTables("a", "198.18.90.1", "up0", vns)


def _row(mac: str, port: str, guard: Guard = Guard.ON, sources: tuple[str, ...] = ()) -> Entry:
    return Entry(mac, Function.NO_MODIFICATION, mac, "vm", port, guard=guard, sources=sources)


def test_each_nic_gets_a_chain_and_the_port_a_dispatch_on_source_mac():
    p, q, sw = port_name("x", 0), port_name("y", 0), "tsabcdef0123"
    t = _tables(_row("02:00:00:00:00:01", p, sources=("10.9.0.1", "fd00:9::1")),
                _row("02:00:00:00:00:02", q, Guard.OFF),
                _row("02:00:00:00:00:03", sw, sources=("10.9.0.3",)),
                _row("02:00:00:00:00:04", sw, Guard.OFF),
                routes=(Route("10.7.0.5/32", "deliver", "02:00:00:00:00:05", port="tpr"),))
    chains = ps.render(t, frozenset({p, q, sw, "tpr"}))
    base = chains[0]
    assert f'devices = {{ "{p}", "tpr", "{sw}" }} priority -275' in base  # not q: its only NIC is trusted
    assert f'"{p}" . 02:00:00:00:00:01 : jump ps_{p}_020000000001' in base
    assert f'"{sw}" . 02:00:00:00:00:04 : accept' in base and q not in base
    assert base.endswith("    counter drop\n  }\n")  # any other source on a checked port
    nic = next(c for c in chains if f"chain ps_{p}_020000000001" in c)
    assert "arp saddr ether != 02:00:00:00:00:01 counter drop" in nic
    assert "arp saddr ip != { 0.0.0.0, 10.9.0.1 } counter drop" in nic
    assert "ip saddr != { 10.9.0.1 } counter drop" in nic
    assert "ip6 saddr != { fd00:9::1, fe80::ff:fe00:1 } counter drop" in nic
    assert "0xfd000009000000000000000000000001" in nic  # an ND target it may advertise
    assert "@th,208,48 != 0x020000000001" in nic and "nd-router-advert" in nic
    assert nic.rstrip().endswith("accept\n  }")
    routed = next(c for c in chains if "chain ps_tpr_" in c)
    assert "ip saddr != { 10.7.0.5 } counter drop" in routed
    assert ps.render(t, frozenset({q})) == []  # nothing to check


def test_a_nic_with_no_address_is_held_to_its_mac_and_a_router_may_advertise():
    p = port_name("x", 0)
    bare = ps.render(_tables(_row("02:00:00:00:00:01", p)), frozenset({p}))[1]
    assert "saddr" not in bare and "nd-router-advert" in bare  # only the server-side messages are refused
    router = ps.render(_tables(_row("02:00:00:00:00:01", p, Guard.ROUTER, ("10.9.0.0/24",))), frozenset({p}))[1]
    assert "ip saddr != { 10.9.0.0/24 } counter drop" in router and "nd-router-advert" not in router


def test_the_agents_table_holds_the_chains():
    p = port_name("x", 0)
    text = render(_tables(_row("02:00:00:00:00:01", p, sources=("10.9.0.1",))), frozenset({p}))
    assert "chain port_security" in text and f"chain ps_{p}_020000000001" in text
