"""The lab's FRR plan: where the rendezvous point goes and how many equal paths OSPF must
install before the lab calls the underlay converged."""
from __future__ import annotations

from ipaddress import IPv4Interface

import pytest

from tenet.lab.frr import (RouterConfig, RouterPort, anycast_address, equal_paths, ospfd_conf, pimd_conf,
                           rendezvous, router_id)


def fabric(links: dict[str, list[str]]) -> dict[str, tuple[RouterPort, ...]]:
    n = {}
    out = {}
    for r, nets in links.items():
        ports = []
        for i, net in enumerate(nets):
            n[net] = n.get(net, 0) + 1
            ports.append(RouterPort(f"u{i}", IPv4Interface(f"198.18.{sorted(set(sum(links.values(), []))).index(net)}.{n[net]}/24"), net))
        out[r] = tuple(ports)
    return out


CLOS = fabric({
    **{f"leaf{i}": [f"rack{i}", f"l{i}s1", f"l{i}s2"] for i in range(1, 5)},
    "spine1": [f"l{i}s1" for i in range(1, 5)],
    "spine2": [f"l{i}s2" for i in range(1, 5)],
})


def test_a_chain_has_one_path_and_the_rp_in_the_middle():
    chain = fabric({"ra": ["pa", "pb"], "rb": ["pb", "pc"], "rc": ["pc", "pd"]})
    assert equal_paths(chain) == {"ra": {"pc": 1, "pd": 1}, "rb": {"pa": 1, "pd": 1}, "rc": {"pa": 1, "pb": 1}}
    assert rendezvous(chain) == ("rb",)


def test_leaf_spine_has_two_paths_between_racks_and_the_rp_on_a_spine():
    paths = equal_paths(CLOS)
    assert paths["leaf1"]["rack4"] == 2  # through either spine
    assert paths["leaf1"]["l2s1"] == 1  # a spine's link: through that spine only
    assert paths["spine1"]["rack3"] == 1 and paths["spine1"]["l3s2"] == 1
    assert rendezvous(CLOS) == ("spine1", "spine2")  # an anycast RP on both spines


def test_a_ring_splits_the_far_side():
    ring = fabric({"r1": ["a", "b"], "r2": ["b", "c"], "r3": ["c", "e"], "r4": ["a", "d"], "r5": ["d", "e"]})
    paths = equal_paths(ring)
    assert paths["r1"]["e"] == 2  # three routers either way round
    assert paths["r1"]["c"] == 1 and paths["r2"]["d"] == 2


def test_every_port_runs_ospf_and_pim():
    peers = (router_id(CLOS["spine1"]), router_id(CLOS["spine2"]))
    leaf = RouterConfig("leaf1", "tn-x-leaf1", CLOS["leaf1"], "198.19.255.254", peers)
    assert ospfd_conf(leaf).count(" ip ospf area 0") == 3
    assert pimd_conf(leaf).count(" ip pim\n") == 3 and "ip pim rp 198.19.255.254 224.0.0.0/4" in pimd_conf(leaf)
    assert "msdp" not in pimd_conf(leaf)


def test_the_rp_routers_hold_the_anycast_address_and_peer_by_msdp():
    peers = (router_id(CLOS["spine1"]), router_id(CLOS["spine2"]))
    spine = RouterConfig("spine1", "tn-x-spine1", CLOS["spine1"], "198.19.255.254", peers)
    assert "interface lo\n ip ospf area 0" in ospfd_conf(spine)
    conf = pimd_conf(spine)
    assert f"ip msdp mesh-group tenet source {peers[0]}" in conf
    assert f"ip msdp mesh-group tenet member {peers[1]}" in conf and f"member {peers[0]}" not in conf


def test_the_anycast_address_avoids_every_network():
    from ipaddress import IPv4Network
    assert anycast_address([IPv4Network("198.18.0.0/24")]) == "198.19.255.254"
    with pytest.raises(ValueError, match="no free anycast RP address"):
        anycast_address([IPv4Network("198.19.255.0/25"), IPv4Network("198.19.255.128/25")])


def test_a_lone_rp_is_at_its_own_address_without_msdp():
    chain = fabric({"ra": ["pa", "pb"], "rb": ["pb", "pc"], "rc": ["pc", "pd"]})
    me = router_id(chain["rb"])
    rb = RouterConfig("rb", "tn-x-rb", chain["rb"], me, (me,))
    assert rb.is_rp and not rb.anycast
    assert "msdp" not in pimd_conf(rb) and "interface lo" not in ospfd_conf(rb)
