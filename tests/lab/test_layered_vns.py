"""Layered VNs (seed 002, FIG. 9A): VNs over VNs, proved with packets on the underlay."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from capture import Capture
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).parents[2] / "examples" / "layers.yaml"
CARRIER = {"base": {"host1": "10.77.0.254", "host2": "10.77.0.253", "host3": "10.77.0.252"},
           "top": {"host1": "10.78.0.254", "host3": "10.78.0.252"}}

# A VXLAN packet forged by a tenant VM: VNI as argv[2], inner frame a broadcast ARP request
# (who-has argv[3]) from a MAC nobody has, sent to argv[1]:4789.
FORGE = r"""
import socket, struct, sys
vni, target = int(sys.argv[2]), socket.inet_aton(sys.argv[3])
src = bytes.fromhex("02dead00beef")
arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src + socket.inet_aton("10.77.0.99") + bytes(6) + target
frame = b"\xff" * 6 + src + b"\x08\x06" + arp
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(5):
    s.sendto(struct.pack("!II", 0x08000000, vni << 8) + frame, (sys.argv[1], 4789))
"""


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


def ping(lab, vm: str, ip: str, *args: str) -> bool:
    return lab.exec(vm, "ping", "-c2", "-i0.2", "-W1", *args, ip).returncode == 0


def test_three_layers_deep_in_three_vxlans(lab):
    """peak over top over base: host1 → host3 (behind the router) is VXLAN in VXLAN in VXLAN,
    each layer's tunnel between the carriers of the layer beneath; full 1500-byte frames fit."""
    with Capture(lab, "host3", "up0", "udp port 4789") as cap:
        assert ping(lab, "p1", "10.79.0.3", "-M", "do", "-s", "1472")
    rows = {tuple(r) for r in cap.fields("icmp.type == 8", "vxlan.vni", "ip.src", "ip.dst")}
    assert rows == {("7000,7001,7002", "198.18.1.10,10.77.0.254,10.78.0.254,10.79.0.1",
                     "198.18.2.10,10.77.0.252,10.78.0.252,10.79.0.3")}


def test_lower_layer_translates_on_a_shared_physical_network(lab):
    """host1 and host2 share pn1: base translates its carriers' MACs (no underlay VXLAN) while
    top still tunnels between the carriers' addresses — each layer applies its own table."""
    with Capture(lab, "host2", "up0", "udp port 4789") as cap:
        assert ping(lab, "t1", "10.78.0.2", "-M", "do", "-s", "1472")
    rows = cap.fields("icmp.type == 8", "vxlan.vni", "ip.src", "eth.src")
    assert rows and all(r[0] == "7001" and r[1].startswith(CARRIER["base"]["host1"] + ",") for r in rows)
    assert all(r[2].startswith("06:74:6e:") for r in rows)  # the carrier's external MAC on pn1


def test_each_layer_still_carries_its_own_tenants_and_addresses_are_reused(lab):
    assert ping(lab, "b1", "10.77.0.3")  # base's own VMs
    assert ping(lab, "t3", "10.78.0.2")  # top, host3 → host2 via the router
    assert ping(lab, "o1", "10.77.0.3")  # globex reuses base's subnet: its own o3 answers
    mac_b3 = lab.mac("b3", 0)
    neigh = lab.exec("o1", "ip", "neigh", "show", "10.77.0.3").stdout
    assert mac_b3 not in neigh


def test_a_tenant_of_the_lower_vn_cannot_inject_into_other_vns(lab):
    """b3 is on base, so host1's carrier address is reachable from it. Forged VXLAN for
    globex's VN (and for top, from an address that is no carrier) reaches the carrier and no
    further: o1 and t1 never see the ARP requests inside."""
    with Capture(lab, "host1", "tnm7000", "udp port 4789") as at_carrier, \
            Capture(lab, "o1", "eth0", "arp") as in_other, Capture(lab, "t1", "eth0", "arp") as in_top:
        for vni, target in ((7003, "10.77.0.1"), (7001, "10.78.0.1")):
            lab.exec("b3", sys.executable, "-c", FORGE, CARRIER["base"]["host1"], str(vni), target, check=True)
    arrived = {r[0] for r in at_carrier.fields("vxlan", "vxlan.vni")}
    assert arrived == {"7003", "7001"}  # the forged packets did reach the carrier
    assert in_other.fields("arp.src.hw_mac == 02:de:ad:00:be:ef", "arp.dst.proto_ipv4") == []
    assert in_top.fields("arp.src.hw_mac == 02:de:ad:00:be:ef", "arp.dst.proto_ipv4") == []
    assert ping(lab, "t1", "10.78.0.3")  # and the real peers still pass


def test_a_tenant_vm_cannot_reach_its_nve_through_the_vn(lab):
    """o1 (globex) routes its host's underlay address onto its VN and sends VXLAN for acme's
    base there: the VN's bridge would hand it to the host, which would decapsulate it into
    base by VNI. The NVE takes nothing from a VN's bridge: no ARP answer, no injection."""
    lab.exec("o1", "ip", "route", "replace", "198.18.1.10/32", "dev", "eth0", check=True)
    with Capture(lab, "b1", "eth0", "arp") as in_base:
        lab.exec("o1", sys.executable, "-c", FORGE, "198.18.1.10", "7000", "10.77.0.1", check=True)
        assert not ping(lab, "o1", "198.18.1.10")
    assert "lladdr" not in lab.exec("o1", "ip", "neigh", "show", "198.18.1.10", check=True).stdout  # no answer
    assert in_base.fields("arp.src.hw_mac == 02:de:ad:00:be:ef", "arp.dst.proto_ipv4") == []


def test_a_guard_opened_by_hand_is_closed_again_by_the_agent(lab):
    """Editing a chain (here: the guard's policy set to accept) keeps the table's comment,
    where the ruleset's digest lives. The agent still notices — the kernel's listing moved
    since its last swap — and puts the guard back: the same injection fails again."""
    chain = lambda: lab.exec("host1", "nft", "list", "chain", "netdev", "tenet", "nve_local", check=True).stdout  # noqa: E731
    opened = lab.exec("host1", "nft", "--echo", "chain", "netdev", "tenet", "nve_local", "{ policy accept ; }",
                      check=True).stdout
    assert "policy accept" in opened  # the kernel took the edit (reading it back races the agent's pass)
    deadline = time.monotonic() + 10  # the agent reads everything back every 2 s
    while "policy drop" not in chain():
        assert time.monotonic() < deadline, "the agent never restored the guard"
        time.sleep(0.1)
    lab.exec("o1", "ip", "route", "replace", "198.18.1.10/32", "dev", "eth0", check=True)
    with Capture(lab, "b1", "eth0", "arp") as in_base:
        lab.exec("o1", sys.executable, "-c", FORGE, "198.18.1.10", "7000", "10.77.0.1", check=True)
        assert not ping(lab, "o1", "198.18.1.10")
    assert in_base.fields("arp.src.hw_mac == 02:de:ad:00:be:ef", "arp.dst.proto_ipv4") == []
