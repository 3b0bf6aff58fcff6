"""IP-based (routed) VNs: per-VN routing tables with prefix aggregation, real packets."""
from __future__ import annotations

import json
import subprocess
import time
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from tenet.agent.rates import stage_names
from tenet.compute.tables import HostTables
from tenet.model.tenancy import port_name
from tenet.store import published
from tenet.store.open import open_store

from capture import Capture
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).with_name("routed.yaml")


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        lab.wait_attached("t", timeout=15)
        yield lab


def tables(lab, host: str) -> HostTables:
    s = open_store(lab.store_url)
    try:
        return published.read(s, host)
    finally:
        s.close()


def ping(lab, vm: str, ip: str) -> bool:
    return lab.exec(vm, "ping", "-c2", "-i0.2", "-W1", ip).returncode == 0


def test_each_function_carries_routed_traffic(lab):
    assert ping(lab, "a", "10.63.0.11")  # b: same NVE, delivered by a host route
    with Capture(lab, "h2", "up0", "icmp") as cap:
        assert ping(lab, "a", "10.63.0.100")  # c on h2: same physical network, translated, no UDP
    macs = {row[0] for row in cap.fields("icmp.type == 8", "eth.dst")}
    assert macs == {tables(lab, "h2").vn("r1").router_mac}  # h2's router MAC for r1, never c's own MAC
    with Capture(lab, "h3", "up0", "udp port 4789") as cap:
        assert ping(lab, "a", "10.63.0.200")  # d on h3: behind the router, VXLAN
    inner = {(vni, dst.split(",")[-1]) for vni, dst in cap.fields("vxlan && icmp.type == 8", "vxlan.vni", "ip.dst")}
    assert inner == {("7100", "10.63.0.200")}


def test_nve_answers_arp_with_the_anycast_gateway(lab):
    """VMs are configured like any OS (address/24, default route): what they ARP for, their NVE
    answers with the VN's anycast gateway MAC, so every frame meets the routing table."""
    gw = tables(lab, "h1").vn("r1").gateway.split()[1]
    with Capture(lab, "a", "eth0", "arp") as cap:
        lab.exec("a", "ip", "neigh", "flush", "dev", "eth0")
        assert ping(lab, "a", "10.63.0.100")  # c on h2: "on-link" for a, yet routed
    replies = cap.fields("arp.opcode == 2", "arp.src.hw_mac", "arp.src.proto_ipv4")
    assert replies and {tuple(r) for r in replies} <= {(gw, "10.63.0.100"), (gw, "10.63.0.1")}
    neigh = lab.exec("a", "ip", "neigh", "show", "10.63.0.100").stdout
    assert gw in neigh, neigh


def test_same_addresses_in_another_routed_vn_stay_isolated(lab):
    with Capture(lab, "b", "eth0", "icmp") as cap_b, Capture(lab, "d", "eth0", "icmp") as cap_d:
        assert not ping(lab, "x", "10.63.0.11")  # r2 reuses 10.63.0.0/24; b is in r1
        assert not ping(lab, "x", "10.63.0.200")  # d shares x's host, not its VN
    assert cap_b.fields("icmp", "frame.number") == [] and cap_d.fields("icmp", "frame.number") == []
    assert ping(lab, "a", "10.63.0.200")  # and r1 itself still works


def test_attached_tes_is_routed_from_every_host(lab):
    assert ping(lab, "t", "10.63.0.10")
    assert ping(lab, "d", "10.63.0.12")  # from behind the router, through h3's aggregate toward h1
    assert ping(lab, "c", "10.63.0.12")
    own = [r for r in tables(lab, "h1").vn("r1").routes if r.prefix == "10.63.0.12/32"]
    assert len(own) == 1 and own[0].function == "deliver" and own[0].address == lab.mac("t")


def test_a_routed_tes_is_held_upstream(lab):
    """carol's `rate_up: 20mbit`: t's port in a routed VN is staged like any TES's — the routed
    chain hooks the stage's arrival end — and t's TCP stream to c (h2) is held to the limit;
    toward t nothing is limited."""
    lab.wait_converged(20)
    shaper, arrival = stage_names(port_name("t", 0))
    assert "rate 20Mbit" in lab.exec("h1", "tc", "qdisc", "show", "dev", shaper).stdout
    hooked = lab.exec("h1", "nft", "list", "chain", "netdev", "tenet", "ipvn7100_out").stdout
    assert arrival in hooked.split("devices = ")[1].split("}")[0], hooked
    assert "tbf" not in lab.exec("h1", "tc", "qdisc", "show", "dev", port_name("t", 0)).stdout
    srv = lab.popen("c", "iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while "LISTEN" not in lab.exec("c", "ss", "-ltn", "sport = :5201").stdout:
            assert time.monotonic() < deadline, "iperf3 server"
            time.sleep(0.05)
        r = lab.exec("t", "iperf3", "-c", "10.63.0.100", "-t", "3", "-J", timeout=30)
        wire = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] * 1514 / 1448
    finally:
        srv.terminate()
        srv.wait(5)
    assert abs(wire - 20e6) <= 0.1 * 20e6, f"{wire / 1e6:.1f} Mbit/s on the wire from t"


def test_tes_covered_by_an_aggregate_adds_no_remote_entry(lab):
    lab.stop_process("tes", "t.eth0")  # TERMINATE: h1 withdraws t's host route
    deadline = time.monotonic() + 10
    while any(r.address == lab.mac("t") for r in tables(lab, "h1").vn("r1").routes):
        assert time.monotonic() < deadline, "t's route was not withdrawn"
        time.sleep(0.05)
    before = {h: tables(lab, h) for h in ("h2", "h3")}
    covering = [r for r in before["h3"].vn("r1").routes if IPv4Address("10.63.0.12") in IPv4Network(r.prefix)]
    h1_ip = tables(lab, "h1").underlay_ip.split("/")[0]
    assert [(r.function, r.address) for r in covering] == [("encapsulate", h1_ip)]
    assert IPv4Network(covering[0].prefix).prefixlen < 32  # an aggregate, not a host route

    lab.start_tes("t")
    lab.wait_attached("t", timeout=15)
    assert ping(lab, "d", "10.63.0.12")
    for h in ("h2", "h3"):
        after = tables(lab, h)
        assert after.generation == before[h].generation, f"{h} was republished for a covered TES"
        assert after.vn("r1").routes == before[h].vn("r1").routes
