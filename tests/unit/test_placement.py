"""The placement advisor (compute/placement.py): figures computed by hand on small fabrics,
each goal's plan step by step, capacity never exceeded (replayed on the documents, not on
the planner's own bookkeeping), drain empties its host or says why not, unmovable VMs stay."""
from __future__ import annotations

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tenet.compute.placement import Goal, Move, Overload, PlacementError, plan
from tenet.model.load import intent_to_doc, load_intent

# h1..h3 share pn1 (translated between them); h4 and h5 are behind the router on pn2
FABRIC = """
name: place
underlay:
  networks:
    pn1: {subnet: 198.18.1.0/24}
    pn2: {subnet: 198.18.2.0/24}
  routers:
    r: {networks: [pn1, pn2]}
hosts:
  h1: {network: pn1}
  h2: {network: pn1}
  h3: {network: pn1}
  h4: {network: pn2}
  h5: {network: pn2}
networks:
  blue: {vnid: 10, subnet: 10.0.0.0/24}
  red: {vnid: 20, bum: replicate}
"""


def intent(capacity: dict, vms: dict, **more):
    d = yaml.safe_load(FABRIC)
    for h, c in capacity.items():
        d["hosts"][h]["capacity"] = c
    d["vms"] = {name: {"host": host, "network": vn, **extra} for name, (host, vn, *rest) in vms.items()
                for extra in [rest[0] if rest else {}]}
    d.update(more)
    return load_intent(d)


SPREAD = {"a": ("h1", "blue"), "b": ("h2", "blue"), "c": ("h4", "blue"), "d": ("h1", "red"), "e": ("h5", "red")}


def test_figures_by_hand():
    p = plan(intent({}, SPREAD), "colocate")
    f = p.before
    assert f.hosts_per_vn == (("blue", 3), ("red", 2)) and (f.total, f.mean, f.max) == (5, 2.5, 3)
    assert f.broadcast_copies == 2 + 1  # blue: h1 reaches h2 and h4; red: h1 reaches h5
    # blue: h1-h2 translated, h1-h4 and h2-h4 encapsulated; red: h1-h5 encapsulated
    assert (f.translated_pairs, f.encapsulated_pairs) == (1, 3)
    assert f.busy_hosts == 4
    assert p.moves == () and p.after == f  # no host declares a capacity: nothing can move
    assert p.uncapped == ("h1", "h2", "h3", "h4", "h5") and p.idle == ("h3",) and p.emptied == ()


def test_a_pair_sharing_two_vns_counts_once():
    f = plan(intent({}, {"a": ("h1", "blue"), "b": ("h2", "blue"), "d": ("h1", "red"), "e": ("h2", "red")}),
             "colocate").before
    assert (f.translated_pairs, f.encapsulated_pairs, f.broadcast_copies) == (1, 0, 2)


def test_colocate_step_by_step():
    """Hand-run: gathering blue on h3 (3 moves) lowers the total 5 -> 3, more than any single
    move (5 -> 4); then red leaves h5 for h1 (3 -> 2). h1 has room for 3, h5 for 1."""
    p = plan(intent({"h1": 3, "h2": 2, "h3": 4, "h4": 2, "h5": 1}, SPREAD), Goal.COLOCATE)
    assert p.moves == (
        Move("a", "h1", "h3", "blue gathers on h3"), Move("b", "h2", "h3", "blue gathers on h3"),
        Move("c", "h4", "h3", "blue gathers on h3"), Move("e", "h5", "h1", "red leaves h5"))
    a = p.after
    assert a.hosts_per_vn == (("blue", 1), ("red", 1)) and (a.total, a.mean, a.max) == (2, 1.0, 1)
    assert (a.broadcast_copies, a.translated_pairs, a.encapsulated_pairs, a.busy_hosts) == (0, 0, 0, 2)
    assert p.idle == ("h2", "h4", "h5") == p.emptied and p.unmoved == () and p.uncapped == ()


def test_colocate_packs_into_the_hosts_a_vn_already_has():
    """blue: 2 VMs on h1, 1 on h2, 1 on h3; h1 has room for 2 more: h2's and h3's come over."""
    vms = {"a": ("h1", "blue"), "b": ("h1", "blue"), "c": ("h2", "blue"), "d": ("h3", "blue")}
    p = plan(intent({"h1": 4, "h2": 4, "h3": 4}, vms), "colocate")
    assert [(m.vm, m.destination) for m in p.moves] == [("c", "h1"), ("d", "h1")]
    assert p.after.hosts_per_vn == (("blue", 1),) and p.emptied == ("h2", "h3")


def test_colocate_stops_when_nothing_lowers_the_total():
    p = plan(intent({"h1": 1, "h2": 1}, {"a": ("h1", "blue"), "b": ("h2", "blue")}), "colocate")
    assert p.moves == () and p.after == p.before  # both full; h3..h5 declare nothing


def test_unmovable_vms_stay_and_are_named():
    vms = {"a": ("h1", "blue"), "b": ("h2", "blue", {"migrating_to": "h3"}),
           "c": ("h4", "blue", {"ip": "10.0.0.9/24"})}
    more = {"vrouters": {"vr": {"host": "h5", "nics": [{"network": "blue", "ip": "10.0.0.1/24"}]}}}
    p = plan(intent({"h1": 9, "h2": 9, "h3": 9, "h4": 9, "h5": 9}, vms, **more), "colocate")
    moved = {m.vm for m in p.moves}
    assert not moved & {"b", "vr"}
    reasons = {u.vm: u.reason for u in p.unmoved}
    assert reasons["b"] == "a migration to h3 is under way: finish it first"
    assert reasons["vr"].startswith("a virtual router")
    # b is at h2 and h3 at once (both serve it); the VR at h5: blue stays on those three
    assert dict(p.after.hosts_per_vn)["blue"] == 3


def test_a_tes_on_an_access_lan_is_not_moved():
    d = yaml.safe_load(FABRIC)
    d["hosts"]["h1"]["capacity"] = d["hosts"]["h2"]["capacity"] = 4
    d["aaa"] = {"users": {"t": {"password": "pw", "network": "blue"}}}
    d["vms"] = {"a": {"host": "h1", "network": "blue"},
                "t": {"host": "h2", "nics": [{"network": "blue", "join": "discover", "identity": "t",
                                              "password": "pw", "nves": ["h3"]}]}}
    p = plan(load_intent(d), "drain", "h2")
    assert p.moves == () and [u.reason for u in p.unmoved] == [
        "its eth0 is on an access LAN of several NVEs: it moves by re-plugging, not live migration"]


def drain_fabric(h2=3, q_cpu=1):
    return intent({"h1": 2, "h2": h2, "h3": {"cpu": 4, "memory": "8GiB"}},
                  {"x": ("h1", "blue"), "y": ("h1", "red", {"size": {"cpu": 2, "memory": "4GiB"}}),
                   "p": ("h2", "blue"), "q": ("h3", "red", {"size": {"cpu": q_cpu}}), "s": ("h4", "blue")})


def test_drain_prefers_hosts_that_have_the_vms_vns():
    p = plan(drain_fabric(), "drain", drain="h1")
    assert p.moves == (Move("y", "h1", "h3", "drain h1; h3 has red"), Move("x", "h1", "h2", "drain h1; h2 has blue"))
    assert p.unmoved == () and "h1" in p.emptied and p.drain == "h1"
    assert p.uncapped == ("h4", "h5")  # never targets, though h4 has blue too


def test_drain_says_why_a_vm_stays():
    p = plan(drain_fabric(h2=1, q_cpu=3), "drain", "h1")  # h2 full; h3 has 1 CPU left: x fits, y not
    assert [(m.vm, m.destination) for m in p.moves] == [("x", "h3")]
    assert [(u.vm, u.host, u.reason) for u in p.unmoved] == [
        ("y", "h1", "no other hypervisor host has room for it (1 slot, 2 CPU, 4GiB)")]
    assert "h1" not in p.idle


def test_drain_with_no_capacity_anywhere_else():
    p = plan(intent({"h1": 2}, {"x": ("h1", "blue")}), "drain", "h1")
    assert p.unmoved[0].reason == "no other hypervisor host declares a capacity (hosts without one are never targets)"


def test_drain_of_a_host_behind_a_switch_goes_only_behind_a_switch():
    d = yaml.safe_load(FABRIC)
    d["switches"] = {"tor1": {"network": "pn1"}, "tor2": {"network": "pn2"}}
    d["hosts"].update({"p6": {"switch": "tor1"}, "p7": {"switch": "tor2", "capacity": 2}})
    d["hosts"]["h1"]["capacity"] = 10
    d["vms"] = {"v": {"host": "p6", "nics": [{"network": "blue", "join": "8021x", "identity": "v", "password": "pw"}]},
                "w": {"host": "h2", "network": "blue"}}
    i = load_intent(d)
    p = plan(i, "drain", "p6")
    assert p.moves == (Move("v", "p6", "p7", "drain p6"),)
    # the NVE serving v is its switch: blue's NVEs are tor1 and h2 (one network), then tor2 and h2 (two)
    assert (p.before.translated_pairs, p.before.encapsulated_pairs) == (1, 0)
    assert (p.after.translated_pairs, p.after.encapsulated_pairs) == (0, 1)
    assert plan(i, "drain", "h2").moves == (Move("w", "h2", "h1", "drain h2"),)  # never to p7, which has room too


def test_balance_step_by_step():
    """h1 full (4 of 4), h2 empty, h3 a quarter: a to h2 (both shares then 3/4 or less), b to
    h2 (no new VN there now); then any move leaves one of the pair at 1/2 or more: done."""
    vms = {n: ("h1", "blue") for n in "abcd"} | {"e": ("h3", "red")}
    p = plan(intent({"h1": 4, "h2": 4, "h3": 4}, vms), "balance")
    assert [(m.vm, m.source, m.destination) for m in p.moves] == [("a", "h1", "h2"), ("b", "h1", "h2")]
    assert p.moves[0].why == "h1 100% -> 75%, h2 0% -> 25%"
    assert p.after.total == p.before.total + 1


def test_balance_weighs_the_fullest_dimension():
    vms = {"a": ("h1", "blue", {"size": {"cpu": 4, "memory": "1GiB"}}), "b": ("h1", "blue"), "c": ("h2", "blue")}
    p = plan(intent({"h1": {"cpu": 8, "memory": "64GiB"}, "h2": {"cpu": 8, "memory": "64GiB"}}, vms), "balance")
    assert [(m.vm, m.destination) for m in p.moves] == [("b", "h2")]  # 5/8, 1/8 -> 4/8, 2/8; a would overshoot


def test_over_capacity_is_reported_and_never_made_worse():
    p = plan(intent({"h1": 1, "h2": 1}, {"a": ("h1", "blue"), "b": ("h1", "red"), "c": ("h2", "blue")}), "colocate")
    assert p.overloaded == (Overload("h1", ("2 slots of 1",)),)
    assert all(m.destination != "h1" for m in p.moves)


def test_bad_requests():
    i = intent({}, SPREAD)
    with pytest.raises(PlacementError, match="no goal 'pack'"):
        plan(i, "pack")
    with pytest.raises(PlacementError, match="drain needs the host"):
        plan(i, "drain")
    with pytest.raises(PlacementError, match="no host named 'h9'"):
        plan(i, "drain", "h9")
    with pytest.raises(PlacementError, match="with the drain goal"):
        plan(i, "colocate", "h1")


def test_layered_vn_brings_its_carrier_hosts_into_the_lower_vn():
    d = yaml.safe_load(FABRIC)
    d["networks"]["up"] = {"vnid": 30, "over": "blue", "subnet": "10.9.0.0/24"}
    d["vms"] = {"a": {"host": "h1", "network": "blue"}, "u": {"host": "h2", "network": "up"},
                "v": {"host": "h3", "network": "up"}}
    f = plan(load_intent(d), "colocate").before
    assert f.hosts_per_vn == (("blue", 3), ("up", 2))  # h2 and h3 carry up over blue


# -- properties: on any small fabric, every goal keeps the rules ---------------------------------
HOSTS = ("h1", "h2", "h3", "h4", "h5")
capacities = st.dictionaries(st.sampled_from(HOSTS), st.one_of(
    st.integers(0, 4), st.fixed_dictionaries({"cpu": st.integers(0, 8)}),
    st.fixed_dictionaries({"slots": st.integers(0, 4), "memory": st.sampled_from(["2GiB", "4GiB", "8GiB"])})))
vm_specs = st.lists(st.tuples(st.sampled_from(HOSTS), st.sampled_from(("blue", "red")), st.integers(1, 3)),
                    min_size=1, max_size=9)


@settings(max_examples=150, deadline=None)
@given(capacities, vm_specs, st.sampled_from(["colocate", "balance", "drain"]), st.sampled_from(HOSTS))
def test_every_plan_keeps_capacity_moves_once_and_replays(caps, specs, goal, drained):
    vms = {f"v{i}": (h, vn, {"size": {"cpu": cpu, "memory": f"{cpu}GiB"}}) for i, (h, vn, cpu) in enumerate(specs)}
    i = intent(caps, vms)
    p = plan(i, goal, drained if goal == "drain" else None)
    assert len({m.vm for m in p.moves}) == len(p.moves)  # each VM moves at most once
    doc = intent_to_doc(i)
    for m in p.moves:  # replayed on the document, one by one: every destination within its capacity
        assert doc["vms"][m.vm]["host"] == m.source and m.destination in caps
        doc["vms"][m.vm]["host"] = m.destination
        now = load_intent(doc)
        cap = now.fabric.host(m.destination).capacity
        there = [v.size for v in now.vms if v.host == m.destination]
        assert not cap.exceeded(len(there), sum(s.cpu for s in there), sum(s.memory for s in there)), m
    after = load_intent(doc)
    assert plan(after, "colocate").before == p.after  # the figures are those of the replayed intent
    assert set(p.idle) == set(HOSTS) - {v.host for v in after.vms}
    if goal == "colocate":
        assert p.after.total <= p.before.total
    if goal == "drain":  # emptied, or every VM still there named with why
        assert sorted(u.vm for u in p.unmoved) == sorted(v.name for v in after.vms if v.host == drained)
