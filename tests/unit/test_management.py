"""The lab's management network (store: etcd): who is on it, at which address, wired how."""
from __future__ import annotations

from ipaddress import IPv4Network

import pytest

from tenet.lab.control import Control, StoreKind
from tenet.lab.management import subnet_for
from tenet.lab.plan import plan
from tenet.model.errors import IntentError
from tenet.model.load import load_intent

ETCD = Control(StoreKind.ETCD, 3, 2)


def doc(subnet: str = "198.18.90.0/24", **extra) -> dict:
    return {
        "name": "m",
        "underlay": {"networks": {"pn": {"subnet": subnet}, "pn2": {"subnet": "198.18.91.0/24"}},
                     "routers": {"r": {"networks": ["pn", "pn2"]}}},
        "switches": {"sw": {"network": "pn"}},
        "hosts": {"a": {"network": "pn"}, "b": {"network": "pn2"}, "p": {"switch": "sw"}},
        "networks": {"v": {"vnid": 100, "subnet": "10.0.0.0/24"}},
        "vms": {"x": {"host": "a", "network": "v", "ip": "10.0.0.1/24"}},
        **extra,
    }


def test_sqlite_has_no_management_network():
    p = plan(load_intent(doc()))
    assert p.management is None and p.controller_nodes() == () and p.etcd_nodes() == ()
    assert not any(v.a == "mg0" for v in p.veths)


def test_every_host_switch_proxy_member_and_controller_is_on_it_and_nothing_else():
    p = plan(load_intent(doc()), ETCD)
    m = p.management
    assert m.subnet == IPv4Network("198.19.254.0/24") and m.netns == "tn-m-mgmt"
    assert [s.name for s in p.etcd_nodes()] == ["etcd1", "etcd2", "etcd3"]
    assert [(s.name, s.netns) for s in p.controller_nodes()] == [("ctl1", "tn-m-ctl1"), ("ctl2", "tn-m-ctl2")]
    on = {v.a_ns for v in p.veths if v.a == "mg0"}
    assert on == {f"tn-m-{n}" for n in ("a", "b", "sw", "p", "etcd1", "etcd2", "etcd3", "ctl1", "ctl2")}
    assert all(v.b_ns == m.netns for v in p.veths if v.a == "mg0")
    ips = [s.ip.ip for s in m.stations] + [m.address.ip]
    assert len(set(ips)) == len(ips) and all(ip in m.subnet for ip in ips)
    for name in ("mgmt", "etcd1", "ctl2"):  # namespaces the lab creates and records
        assert p.node(name).netns == f"tn-m-{name}"
    assert all(c.netns.startswith("tn-m-") for c in p.commands)  # nothing in the root namespace


def test_an_overlapping_underlay_is_refused_naming_the_network():
    with pytest.raises(IntentError) as e:
        plan(load_intent(doc(subnet="198.19.254.128/25")), ETCD)
    assert [p.path for p in e.value.problems] == ["underlay.networks.pn"]
    assert "198.19.254.0/24" in str(e.value)


def test_a_node_named_like_a_station_is_refused():
    with pytest.raises(IntentError, match="'etcd2' is taken"):
        plan(load_intent(doc(vms={"etcd2": {"host": "a", "network": "v", "ip": "10.0.0.2/24"}})), ETCD)


def test_the_subnet_grows_below_the_anycast_range():
    assert subnet_for(253) == IPv4Network("198.19.254.0/24")
    assert subnet_for(254) == IPv4Network("198.19.252.0/23")
    assert subnet_for(1000) == IPv4Network("198.19.248.0/22")
