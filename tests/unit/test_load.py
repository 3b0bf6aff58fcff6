"""Topology validation: every problem, with its path; allocation deterministic and complete."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tenet.model.errors import IntentError
from tenet.model.load import intent_to_doc, load_file, load_intent

FIG3 = """
name: fig3
underlay:
  networks:
    pn1: {subnet: 198.18.1.0/24}
    pn2: {subnet: 198.18.2.0/24}
  routers:
    r1: {networks: [pn1, pn2]}
hosts:
  host1: {network: pn2}
  host2: {network: pn1}
networks:
  n1: {vnid: 5001, subnet: 10.1.0.0/24, bum: multicast}
vms:
  H: {host: host1, nics: [{network: n1, mac: "02:00:00:00:01:08", ip: 10.1.0.8/24}]}
  I: {host: host2, network: n1, ip: 10.1.0.9/24}   # one-NIC shorthand
"""


def doc(**patch):
    d = yaml.safe_load(FIG3)
    for path, value in patch.items():
        node = d
        parts = path.split("__")
        for p in parts[:-1]:
            node = node[p]
        if value is None:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
    return d


def problems(d) -> list[str]:
    with pytest.raises(IntentError) as e:
        load_intent(d)
    return [str(p) for p in e.value.problems]


def test_issue_example_loads_with_allocations():
    i = load_intent(doc())
    assert i.fabric.routers[0].address_on("pn1") == IPv4Interface("198.18.1.1/24")
    assert i.fabric.host("host1").address == IPv4Interface("198.18.2.10/24")
    assert i.vn("n1").group == IPv4Address("239.0.19.137")
    assert i.vms[1].nics[0].mac.startswith("02:") and str(i.vms[1].nics[0].ip) == "10.1.0.9/24"
    assert i.tenants == ("default",)
    assert load_intent(intent_to_doc(i)) == i
    assert load_intent(doc()) == i  # deterministic
    sharded = load_intent(doc(hosts__host1={"network": "pn2", "admission_shards": 2}))
    assert sharded.fabric.host("host1").admission_shards == 2 and i.fabric.host("host1").admission_shards == 1
    assert load_intent(intent_to_doc(sharded)) == sharded


@pytest.mark.parametrize(
    "patch, expected",
    [
        ({"vms__H__nics": [{"network": "n1", "mac": "zz:00"}]}, "vms.H.nics[0].mac: not a MAC address"),
        ({"vms__H__nics": [{"network": "n1", "mac": "01:00:5e:00:00:01"}]}, "vms.H.nics[0].mac: multicast MAC"),
        ({"vms__H__nics": [{"network": "n9"}]}, "vms.H.nics[0].network: no virtual network named 'n9'"),
        ({"vms__H__host": "host9"}, "vms.H.host: no host named 'host9'"),
        ({"vms__I__ip": "10.2.0.9/24"}, "vms.I.ip: 10.2.0.9/24 is not in VN n1's subnet"),
        ({"vms__I__mac": "02:00:00:00:01:08"}, "vms.I.mac: 02:00:00:00:01:08 is already used in n1 by vms.H.nics[0]"),
        ({"vms__I__ip": "10.1.0.8/24"}, "vms.I.ip: 10.1.0.8 is already used in n1"),
        ({"vms__I__nics": []}, "vms.I: give either nics or the one-NIC shorthand"),
        ({"hosts__host1__network": "pn7"}, "hosts.host1.network: no physical network named 'pn7'"),
        ({"hosts__host1__netwrk": "pn1"}, "hosts.host1.netwrk: unknown key"),
        ({"hosts__host1__ip": "198.18.1.20"}, "hosts.host1.ip: 198.18.1.20 is not a host address of pn2"),
        ({"underlay__networks__pn2": {"subnet": "198.18.1.0/25"}}, "underlay.networks.pn2.subnet: 198.18.1.0/25 overlaps pn1"),
        ({"underlay__routers__r1": {"networks": ["pn1"]}}, "underlay.routers.r1.networks: a router joins two or more"),
        ({"networks__n1__vnid": 1 << 24}, "networks.n1.vnid: VN-ID must be an integer 1..16777215"),
        ({"networks__n1__bum": "flood"}, "networks.n1.bum: must be multicast or replicate"),
        ({"networks__n1__group": "224.0.0.5"}, "networks.n1.group: 224.0.0.5 is not a routable multicast group"),
        ({"name": "Bad Name"}, "name: required"),
        ({"vms__host1": {"host": "host1", "nics": []}}, "host1: name used by both a host and a vm"),
        ({"hosts__host1__admission_shards": -1}, "hosts.host1.admission_shards: must be an integer 0..64"),
        ({"hosts__host1__admission_shards": "2"}, "hosts.host1.admission_shards: must be an integer 0..64"),
    ],
)
def test_each_rule_names_its_path(patch, expected):
    assert any(p.startswith(expected) for p in problems(doc(**patch))), problems(doc(**patch))


def test_vnid_and_group_clashes_name_both():
    d = doc()
    d["networks"]["n2"] = {"vnid": 5001}
    assert "networks.n2.vnid: VN-ID 5001 is already used by n1" in problems(d)
    d["networks"]["n2"] = {"vnid": 5002, "group": "239.0.19.137"}
    assert "networks.n2.group: group 239.0.19.137 is already used by n1" in problems(d)


def test_every_problem_is_reported_at_once():
    d = doc(vms__H__host="nowhere", hosts__host2__network="pn9", networks__n1__vnid=0)
    found = problems(d)
    assert len(found) >= 3
    assert {p.split(":")[0] for p in found} >= {"vms.H.host", "hosts.host2.network", "networks.n1.vnid"}


def test_same_mac_and_ip_allowed_in_different_vns():
    d = doc()
    d["networks"]["n2"] = {"vnid": 5002, "subnet": "10.1.0.0/24"}
    d["vms"]["X"] = {"host": "host2", "network": "n2", "mac": "02:00:00:00:01:08", "ip": "10.1.0.8/24"}
    i = load_intent(d)
    assert i.vms[0].nics[0].mac == i.vms[2].nics[0].mac


def test_mac_forms_are_normalised():
    d = doc(vms__H__nics=[{"network": "n1", "mac": "02-00-00-00-01-0A"}])
    assert load_intent(d).vms[0].nics[0].mac == "02:00:00:00:01:0a"


def test_yaml_syntax_error_names_the_line(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_text("name: x\nhosts: {a: [\n")
    with pytest.raises(IntentError, match=r"(?s)t.yaml: .*line 3"):
        load_file(f)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_garbage_raises_intent_error_only(value):
    try:
        load_intent(value)
    except IntentError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["name", "underlay", "hosts", "networks", "vms", "tenants", "aaa", "servers"]), json_values)
def test_mutated_sections_raise_intent_error_only(section, value):
    d = doc()
    d[section] = value
    try:
        load_intent(d)
    except IntentError:
        pass


AAA = {"users": {"alice": {"password": "pw", "network": "n1", "ip": "10.1.0.40"}}}
SERVER = {"uplink": "pn1", "network": "n1", "ip": "10.1.0.30/24", "identity": "alice", "password": "pw", "nves": ["host1"]}


def test_servers_and_users_load_and_round_trip():
    d = doc()
    d["aaa"], d["servers"] = AAA, {"s1": SERVER}
    i = load_intent(d)
    assert str(i.aaa[0].ip) == "10.1.0.40/24"  # the VN's prefix
    s = i.servers[0]
    assert s.address == IPv4Interface("198.18.1.11/24") and s.nic.nves == ("host1",)  # after host2's .10
    assert load_intent(intent_to_doc(i)) == i


@pytest.mark.parametrize("patch, expected", [
    ({"uplink": "pn9"}, "servers.s1.uplink: no physical network named 'pn9'"),
    ({"address": "198.18.2.50"}, "servers.s1.address: 198.18.2.50 is not a free host address of pn1"),
    ({"nves": ["host9"]}, "servers.s1.nves: no host named 'host9'"),
    ({"ip": "10.1.0.8/24"}, "servers.s1: its MAC or IP is already used in n1"),  # H's address
    ({"password": None}, "servers.s1: join: discover needs identity and password"),
    ({"colour": "red"}, "servers.s1.colour: unknown key"),
])
def test_server_rules_name_their_path(patch, expected):
    d = doc()
    spec = {**SERVER, **patch}
    d["aaa"], d["servers"] = AAA, {"s1": {k: v for k, v in spec.items() if v is not None}}
    assert any(p.startswith(expected) for p in problems(d)), problems(d)


def test_user_address_must_lie_in_its_vn():
    d = doc()
    d["aaa"] = {"users": {"alice": {"password": "pw", "network": "n1", "ip": "10.9.0.40/24"}}}
    assert "aaa.users.alice.ip: 10.9.0.40/24 is not in VN n1's subnet 10.1.0.0/24" in problems(d)


def test_user_rates_each_way():
    d = doc()
    d["aaa"] = {"users": {"alice": {"password": "pw", "network": "n1", "rate_up": "5mbit", "rate_down": "40mbit"}}}
    u = load_intent(d).aaa[0]
    assert (u.limit_up, u.limit_down) == ("5mbit", "40mbit")
    assert load_intent(intent_to_doc(load_intent(d))) == load_intent(d)
    d["aaa"]["users"]["alice"] = {"password": "pw", "network": "n1", "rate": "20mbit"}
    assert (load_intent(d).aaa[0].limit_up, load_intent(d).aaa[0].limit_down) == ("20mbit", "20mbit")


@pytest.mark.parametrize("spec, expected", [
    ({"rate_up": "fast"}, "aaa.users.alice.rate_up: not a rate like 50mbit: 'fast'"),
    ({"rate_down": "5 mbit"}, "aaa.users.alice.rate_down: not a rate like 50mbit: '5 mbit'"),
    ({"rate": "20mbit", "rate_up": "5mbit"},
     "aaa.users.alice.rate: sets both directions: give rate_up and/or rate_down instead, not both forms"),
])
def test_user_rates_are_checked(spec, expected):
    d = doc()
    d["aaa"] = {"users": {"alice": {"password": "pw", "network": "n1", **spec}}}
    assert expected in problems(d), problems(d)


@pytest.mark.parametrize("cos", [8, -1, "high", True])
def test_user_class_of_service_is_0_to_7(cos):
    d = doc()
    d["aaa"] = {"users": {"alice": {"password": "pw", "network": "n1", "cos": cos}}}
    assert f"aaa.users.alice.cos: must be a class of service 0..7, not {cos!r}" in problems(d)
    d["aaa"]["users"]["alice"]["cos"] = 5
    assert load_intent(d).aaa[0].cos == 5 and load_intent(intent_to_doc(load_intent(d))) == load_intent(d)


def test_any_underlay_is_a_valid_fabric_but_the_lab_keeps_to_its_range():
    """The 198.18.0.0/15 rule is the lab's policy, not the model's: a deployment's underlay
    may be 10.0.0.0/8."""
    from tenet.lab import policy

    d = doc()
    d["underlay"]["networks"]["pn1"] = {"subnet": "10.0.0.0/24"}
    intent = load_intent(d)
    assert str(intent.fabric.network("pn1").subnet) == "10.0.0.0/24"
    with pytest.raises(IntentError, match=r"underlay.networks.pn1.subnet: 10.0.0.0/24 is not inside 198.18.0.0/15"):
        policy.check(intent)


def test_the_parts_load_on_their_own_to_the_same_intent():
    from tenet.model.load import load_fabric, load_tenancy
    from tenet.model.parts import join, split

    whole = load_intent(doc())
    fabric_doc, tenancy_doc = split(intent_to_doc(whole))
    assert set(fabric_doc) == {"name", "underlay", "hosts"} and "vms" in tenancy_doc
    fabric = load_fabric(fabric_doc)
    assert fabric == whole.fabric
    assert load_tenancy(tenancy_doc, fabric, "fig3") == whole
    assert load_intent(join(fabric_doc, tenancy_doc)) == whole


def test_each_part_names_its_own_problems_and_refuses_the_others_keys():
    from tenet.model.load import load_fabric, load_tenancy
    from tenet.model.parts import split

    fabric_doc, tenancy_doc = split(doc())
    with pytest.raises(IntentError, match=r"vms: unknown key"):
        load_fabric({**fabric_doc, "vms": {}})
    fabric = load_fabric(fabric_doc)
    with pytest.raises(IntentError, match=r"hosts: unknown key"):
        load_tenancy({**tenancy_doc, "hosts": {}}, fabric, "fig3")
    tenancy_doc["vms"]["I"]["host"] = "host9"  # a host the fabric does not have (nor has registered)
    with pytest.raises(IntentError, match=r"vms.I.host: no host named 'host9'"):
        load_tenancy(tenancy_doc, fabric, "fig3")


@pytest.mark.parametrize("doc, fragment", [
    ({"name": "x", "hosts": {"h1": {"network": {"a": 1}}}}, "no physical network named {'a': 1}"),
    ({"name": "x", "vms": {"v": {"host": ["h1"], "network": "n"}}}, "no host named ['h1']"),
    ({"name": "x", "vrouters": {"r": {"host": {"h": 1}}}}, "no hypervisor host named"),
    ({"name": "x", "vlinks": {"l": {"between": [["a"], "b"], "vnid": 5}}}, "no virtual router named ['a']"),
    ({"name": "x", "aaa": {"users": {"u": {"password": "p", "network": {}}}}}, "network"),
])
def test_a_mapping_or_list_where_a_name_belongs_is_a_problem_not_a_type_error(doc, fragment):
    """bench/fuzz.py found these raising TypeError (unhashable type) from the loader."""
    with pytest.raises(IntentError) as e:
        load_intent(doc)
    assert fragment in str(e.value)


@pytest.mark.parametrize("text, fragment", [
    ("a: " + "[" * 1000 + "]" * 1000, "nested deeper than 64 levels"),  # was a RecursionError after a second
    ("a:\n" + "".join(" " * i + "- \n" for i in range(100)), "nested deeper than 64 levels"),
    ("name: 2001-13-45", "month must be in 1..12"),  # was PyYAML's ValueError
    ("name: !!float ''", "line 1, column 7"),  # IndexError inside PyYAML
    ("name: !!timestamp x", "timestamp 'x'"),  # AttributeError inside PyYAML
    ("name: !!bool maybe", "bool 'maybe'"),  # KeyError inside PyYAML
])
def test_yaml_the_parser_cannot_build_is_an_intent_error(text, fragment):
    from tenet.model.document import parse_document

    with pytest.raises(IntentError, match=fragment):
        parse_document(text, "t.yaml")


def test_a_file_that_is_not_utf8_is_an_intent_error(tmp_path):
    f = tmp_path / "t.yaml"
    f.write_bytes(b"name: \xff\n")
    with pytest.raises(IntentError, match="not UTF-8"):
        load_file(f)
