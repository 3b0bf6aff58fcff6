"""IPv6 behind an access switch (802.1X on behalf of VMs): two VMs of two VNs that reuse the
same IPv6 addresses share one switch port; each reaches its own VN (translated and
encapsulated) and neither sees the other's echoes or neighbour discovery (ipv6_access.yaml)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tenet.lab.lab import Lab

from capture import Capture
from waiting import wait

TOPOLOGY = Path(__file__).with_name("ipv6_access.yaml")
SEEN = "icmpv6.type == 128 || icmpv6.type == 129 || icmpv6.type == 135 || icmpv6.type == 136"


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        wait(lambda: {lab.mac("V"), lab.mac("W")} <= set(lab.endpoints()), 20, "V and W authorized")
        lab.wait_converged(20)
        yield lab


def ping6(lab, node, ip, count=2):
    r = lab.exec(node, "ping", "-6", "-c", str(count), "-i", "0.2", "-W", "2", "-n", ip)
    assert r.returncode == 0, r.stdout + r.stderr


def in_echos(lab, vm):
    rows = dict(line.split() for line in lab.exec(vm, "cat", "/proc/net/snmp6").stdout.splitlines())
    return int(rows["Icmp6InEchos"])


@pytest.mark.parametrize("src,dst", [("V", "fd00:62::1"), ("V", "fd00:62::3"), ("S3", "fd00:62::20"),
                                     ("W", "fd00:62::1"), ("Z", "fd00:62::21")])
def test_ping6_from_and_to_vms_behind_the_switch(lab, src, dst):
    lab.exec(src, "ip", "-6", "neigh", "flush", "dev", "eth0")
    ping6(lab, src, dst)


def test_vns_sharing_a_port_and_addresses_stay_apart(lab):
    for vm in ("V", "W", "S", "Z"):
        lab.exec(vm, "ip", "-6", "neigh", "flush", "dev", "eth0")
    before = {vm: in_echos(lab, vm) for vm in ("S", "Z")}
    with Capture(lab, "W", "eth0", "icmp6") as w:
        ping6(lab, "V", "fd00:62::1", 3)  # n2, up the port: S, whose addresses Z holds in n3
        lab.exec("S", "ip", "-6", "neigh", "flush", "dev", "eth0")
        ping6(lab, "S", "fd00:62::20", 2)  # and down it: S solicits V, the switch copies it to V alone
    assert w.fields(SEEN, "icmpv6.type", "ipv6.src", "ipv6.dst") == []
    with Capture(lab, "V", "eth0", "icmp6") as v:
        ping6(lab, "W", "fd00:62::1", 2)  # n3: Z
        lab.exec("Z", "ip", "-6", "neigh", "flush", "dev", "eth0")
        ping6(lab, "Z", "fd00:62::21", 2)
    assert v.fields(SEEN, "icmpv6.type", "ipv6.src", "ipv6.dst") == []
    assert {vm: in_echos(lab, vm) - before[vm] for vm in ("S", "Z")} == {"S": 3, "Z": 2}
