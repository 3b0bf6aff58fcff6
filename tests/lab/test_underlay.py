"""Any routed underlay: the lab's routers run FRR (OSPF, PIM), and tenet's VNs work across a
chain of routers; a VN's broadcasts reach only the hosts that implement it."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from capture import Capture, vxlan_to
from tenet.lab.demo import check, read_tables
from tenet.lab.lab import Lab

HERE = Path(__file__).parent
HOLD = 2.0  # the controller's default instance hold (controller/hold.py)


@pytest.fixture(scope="module")
def chain():
    with Lab.load(HERE / "chain.yaml") as lab:
        yield lab


def test_every_vn_answers_across_two_routers(chain):
    result = check(chain)
    assert result.failures == []
    answered = {(p.src.vm, p.dst.vm) for p in result.reach.probes if p.answered}
    assert {("ra1", "rc"), ("oa", "od")} <= answered  # pa -> pc, in a replicated and a multicast VN


def test_the_middle_network_carries_vxlan_with_the_vnid(chain):
    with Capture(chain, "pb", "r1", "udp port 4789") as cap:  # pb's port toward rb
        assert chain.exec("ra1", "ping", "-c2", "-i0.2", "-W1", "10.61.0.3").returncode == 0
        assert chain.exec("oa", "ping", "-c2", "-i0.2", "-W1", "10.62.0.4").returncode == 0
    seen = {(vni, dst.split(",")[-1]) for vni, dst in cap.fields("vxlan && icmp.type == 8", "vxlan.vni", "ip.dst")}
    assert seen == {("6102", "10.61.0.3"), ("6103", "10.62.0.4")}


def test_broadcasts_reach_only_the_hosts_of_the_vn(chain):
    group = read_tables(chain.store_url, chain.intent)["ha1"].vn("m").group
    pinger = chain.popen("ma", "ping", "-b", "-q", "-i0.05", "-w6", "10.61.0.255")
    try:
        time.sleep(0.5)
        assert vxlan_to(chain, "hb", group, 1.0) > 0  # a member behind a router receives them
        assert vxlan_to(chain, "ha2", group, 1.0) == 0  # beside a member, on the same network
        assert vxlan_to(chain, "hc", group, 1.0) == 0  # two routers away
    finally:
        pinger.kill()
        pinger.wait()


def test_a_host_receives_the_vns_broadcasts_only_while_it_implements_it(chain):
    group = read_tables(chain.store_url, chain.intent)["ha1"].vn("m").group
    pinger = chain.popen("ma", "ping", "-b", "-q", "-i0.05", "-w20", "10.61.0.255")
    try:
        assert vxlan_to(chain, "hc", group, 0.5) == 0
        chain.vrouters.create("mc", "hc", "t1", [{"network": "m", "ip": "10.61.0.3/24"}])
        chain.wait_converged(10)  # hc's agent has created the VN's instance: it joined the group
        assert vxlan_to(chain, "hc", group, 1.0) > 0
        assert vxlan_to(chain, "hd", group, 0.5) == 0  # hc's neighbour on pc still not
        chain.vrouters.destroy("mc")
        chain.wait_converged(10)
        time.sleep(HOLD + 1.0)  # the instance outlives its last VM by the hold, then goes
        assert vxlan_to(chain, "hc", group, 1.0) == 0
    finally:
        pinger.kill()
        pinger.wait()
