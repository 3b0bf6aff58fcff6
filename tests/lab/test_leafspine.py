"""A leaf-spine fabric (four leaves, two spines, OSPF with equal-cost paths): every VN answers
across racks, and when a spine fails traffic between leaves continues through the other while
tenet's tables stay as they were (the underlay heals itself; the overlay never notices)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from capture import vxlan_to
from tenet.lab.demo import check, read_tables
from tenet.lab.faults import ping_through, router_down
from tenet.lab.lab import Lab

HERE = Path(__file__).parent
INTERVAL = 0.02  # s between echoes of the continuous ping
FAILOVER = 5.0  # s: the bound for traffic to find the other spine


@pytest.fixture(scope="module")
def clos():
    with Lab.load(HERE / "leafspine.yaml") as lab:
        yield lab


def test_every_vn_answers_across_the_racks(clos):
    assert check(clos).failures == []


def test_equal_paths_through_both_spines(clos):
    routes = clos.exec("leaf1", "ip", "-4", "route", "show", "198.18.54.0/24").stdout
    assert routes.count("nexthop via") == 2, routes  # rack4 from leaf1: one path per spine


@pytest.mark.parametrize("spine", ["spine1", "spine2"])
def test_a_failed_spine_is_routed_around_and_the_tables_stay(clos, spine):
    """Each spine fails in turn, silently (lab/faults.py), under a continuous ping between the
    farthest racks (whichever spine ECMP put the echoes or their replies on), and comes back
    before the next."""
    clos.wait_routed(30)  # both paths again after the previous failure
    before = {h: t.generation for h, t in read_tables(clos.store_url, clos.intent).items()}
    assert clos.exec("r1", "ping", "-c3", "-i0.2", "-W1", "10.70.0.4").returncode == 0
    run = ping_through(clos, "r1", "10.70.0.4", lambda: router_down(clos, spine), interval=INTERVAL)
    print(f"\n{spine} failed: {run.sent - run.received} of {run.sent} echoes lost, {run.outage:.2f} s without traffic")
    assert run.outage < FAILOVER  # traffic continued through the other spine
    assert run.received > 0.5 * run.sent
    after = {h: t.generation for h, t in read_tables(clos.store_url, clos.intent).items()}
    assert after == before  # tenet's tables did not change


@pytest.mark.parametrize("spine", ["spine1", "spine2"])
def test_a_host_joining_a_vn_while_a_spine_is_down_gets_its_broadcasts(clos, spine):
    """Both spines hold the rendezvous point (anycast, MSDP between them): with either dead, a
    host that gains a multicast VN's first VM still receives the VN's broadcasts from a rack
    whose sender registered with whichever spine was nearest."""
    clos.wait_routed(30)
    group = read_tables(clos.store_url, clos.intent)["h1"].vn("green").group
    pinger = clos.popen("g1", "ping", "-b", "-q", "-i0.05", "-w30", "10.71.0.255")
    try:
        with router_down(clos, spine):
            time.sleep(1.5)  # the leaves have routed around it (dead interval 1 s)
            assert vxlan_to(clos, "h4", group, 0.5) == 0  # h4 has no VM of green yet
            clos.vrouters.create("g4", "h4", "t1", [{"network": "green", "ip": "10.71.0.4/24"}])
            try:
                clos.wait_converged(10)
                assert vxlan_to(clos, "h4", group, 1.5) > 0
            finally:
                clos.vrouters.destroy("g4")
    finally:
        pinger.kill()
        pinger.wait()
