"""The lab's FRR plan: where the rendezvous point goes and how many equal paths OSPF must
install before the lab calls the underlay converged."""
from __future__ import annotations

from ipaddress import IPv4Interface

from tenet.lab.frr import RouterConfig, RouterPort, equal_paths, ospfd_conf, pimd_conf, rendezvous


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
    assert rendezvous(chain) == str(chain["rb"][0].address.ip)


def test_leaf_spine_has_two_paths_between_racks_and_the_rp_on_a_spine():
    paths = equal_paths(CLOS)
    assert paths["leaf1"]["rack4"] == 2  # through either spine
    assert paths["leaf1"]["l2s1"] == 1  # a spine's link: through that spine only
    assert paths["spine1"]["rack3"] == 1 and paths["spine1"]["l3s2"] == 1
    assert rendezvous(CLOS) == str(CLOS["spine1"][0].address.ip)


def test_a_ring_splits_the_far_side():
    ring = fabric({"r1": ["a", "b"], "r2": ["b", "c"], "r3": ["c", "e"], "r4": ["a", "d"], "r5": ["d", "e"]})
    paths = equal_paths(ring)
    assert paths["r1"]["e"] == 2  # three routers either way round
    assert paths["r1"]["c"] == 1 and paths["r2"]["d"] == 2


def test_every_port_runs_ospf_and_pim():
    r = RouterConfig("leaf1", "tn-x-leaf1", CLOS["leaf1"], "198.18.9.9")
    assert ospfd_conf(r).count(" ip ospf area 0") == 3
    assert pimd_conf(r).count(" ip pim\n") == 3 and "ip pim rp 198.18.9.9 224.0.0.0/4" in pimd_conf(r)
