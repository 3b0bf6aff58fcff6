"""Port security inside a VN, with real packets (port_security.yaml): a VM that claims a
neighbour's MAC or addresses — in ARP, in IPv4 and IPv6 sources, in ND — reaches nobody and
is counted at its host, while every addressing function, a VIP, a virtual router and a TES
keep working. The same attack from a NIC with port security off succeeds: the test can fail."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from capture import Capture
from tenet.agent.kernel import nftables
from tenet.lab.lab import Lab
from waiting import wait

TOPOLOGY = Path(__file__).with_name("port_security.yaml")
MAC = {f"r{i}": f"02:71:00:00:00:0{i}" for i in range(1, 5)} | {"vip": "02:71:00:00:00:05", "open": "02:71:00:00:00:06",
                                                                 "t": "02:71:00:00:00:07"}
IP = {f"r{i}": f"10.71.0.{i}" for i in range(1, 5)} | {"vip": "10.71.0.5", "open": "10.71.0.6", "t": "10.71.0.7"}
COUNT = 50


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        wait(lambda: lab.exec("t", "ping", "-c1", "-W1", IP["r1"]).returncode == 0, 30, "the TES attached")
        yield lab


def send(lab, vm: str, frames: str) -> None:
    """Send scapy `frames` (an expression) from the VM's eth0, COUNT times each."""
    script = ("from scapy.all import *\nconf.verb = 0\n"
              f"sendp(({frames}) * {COUNT}, iface='eth0', inter=0.001)\n")
    r = lab.exec(vm, sys.executable, "-c", script, timeout=60)
    assert r.returncode == 0, r.stderr


def drops(lab, host: str, vm: str) -> int:
    """Frames the port-security chains of `host` dropped for the NIC with `vm`'s MAC (and,
    for MACs nobody holds on that port, in the port's dispatch chain)."""
    listing = lab.exec(host, "nft", "list", "table", "netdev", "tenet").stdout
    counts = nftables.dropped(listing)
    mac = MAC[vm].replace(":", "")
    return sum(n for chain, n in counts.items() if chain.startswith("ps_") and chain.endswith(mac))


def dispatch_drops(lab, host: str) -> int:
    return nftables.dropped(lab.exec(host, "nft", "list", "table", "netdev", "tenet").stdout).get("port_security", 0)


def neighbour(lab, vm: str, ip: str) -> str:
    return lab.exec(vm, "ip", "neigh", "show", ip, "dev", "eth0").stdout


def udp(vm: str, src: str, marker: str, to: str = "r1") -> str:
    """A scapy UDP frame from `vm`'s MAC and the source address `src` to `to`, carrying `marker`."""
    return (f"Ether(src='{MAC[vm]}', dst='{MAC[to]}')/IP(src='{src}', dst='{IP[to]}')"
            f"/UDP(sport=9999, dport=9999)/Raw(b'{marker}')")


def markers(cap: Capture, marker: str) -> int:
    return len(cap.fields(f'frame contains "{marker}"', "frame.number"))


def test_every_addressing_function_still_carries_legitimate_traffic(lab):
    """Local (r3), translated (r2), encapsulated (r4), IPv4 and IPv6; a TES; a virtual router
    whose NICs send from the tenant's other prefixes."""
    for vm in ("r2", "r3", "r4", "t"):
        assert lab.exec("r1", "ping", "-c2", "-i0.2", "-W2", IP[vm]).returncode == 0, vm
    for i in (2, 3, 4):
        assert lab.exec("r1", "ping", "-6", "-c2", "-i0.2", "-W2", f"fd00:71::{i}").returncode == 0, i
    ping = lab.exec("r1", "ping", "-c2", "-i0.2", "-W2", "10.72.0.1")
    assert ping.returncode == 0 and "ttl=63" in ping.stdout, ping.stdout  # routed by gw, from 10.71.0.1 into green


def test_arp_spoofing_fails_and_is_counted(lab):
    """r3 claims r2's IPv4 address in gratuitous replies to r1 and in broadcasts: r1 keeps
    r2's MAC and its pings go on reaching r2. From `open` (port security off) the same claim
    on r4's address takes r1's traffic: the attack is real."""
    assert lab.exec("r1", "ping", "-c1", "-W2", IP["r2"]).returncode == 0
    before = drops(lab, "a", "r3")
    claim = (f"Ether(src='{MAC['r3']}', dst='{MAC['r1']}')/ARP(op=2, hwsrc='{MAC['r3']}', psrc='{IP['r2']}',"
             f" hwdst='{MAC['r1']}', pdst='{IP['r1']}'),"
             f"Ether(src='{MAC['r3']}', dst='ff:ff:ff:ff:ff:ff')/ARP(op=1, hwsrc='{MAC['r3']}', psrc='{IP['r2']}',"
             f" pdst='{IP['r2']}'),"
             f"Ether(src='{MAC['r3']}', dst='{MAC['r1']}')/ARP(op=2, hwsrc='{MAC['r2']}', psrc='{IP['r3']}',"
             f" hwdst='{MAC['r1']}', pdst='{IP['r1']}')")
    send(lab, "r3", f"[{claim}]")
    assert MAC["r3"] not in neighbour(lab, "r1", IP["r2"])
    with Capture(lab, "r2", "eth0", "icmp") as at_r2:
        assert lab.exec("r1", "ping", "-c3", "-i0.2", "-W2", IP["r2"]).returncode == 0
    assert len(at_r2.fields("icmp.type == 8", "frame.number")) == 3
    assert drops(lab, "a", "r3") - before >= 3 * COUNT
    # the control: with port security off, the same lie works
    assert lab.exec("r1", "ping", "-c1", "-W2", IP["r4"]).returncode == 0
    send(lab, "open", f"[Ether(src='{MAC['open']}', dst='{MAC['r1']}')/ARP(op=2, hwsrc='{MAC['open']}',"
                      f" psrc='{IP['r4']}', hwdst='{MAC['r1']}', pdst='{IP['r1']}')]")
    try:
        assert MAC["open"] in neighbour(lab, "r1", IP["r4"])
    finally:
        lab.exec("r1", "ip", "neigh", "flush", "dev", "eth0")


def test_ip_source_spoofing_fails_and_is_counted(lab):
    """r3 sends UDP to r1 from r2's address (and from an address nobody has): none arrives;
    from its own, every one does."""
    before = drops(lab, "a", "r3")
    with Capture(lab, "r1", "eth0", "udp port 9999") as at_r1:
        send(lab, "r3", f"[{udp('r3', IP['r2'], 'forged-src-r2')}, {udp('r3', '10.71.0.99', 'forged-src-99')},"
                        f" {udp('r3', IP['r3'], 'honest-src-r3')}]")
    assert markers(at_r1, "forged-src") == 0
    assert markers(at_r1, "honest-src-r3") == COUNT
    assert drops(lab, "a", "r3") - before >= 2 * COUNT


def test_mac_spoofing_and_tags_fail_and_are_counted(lab):
    """r3 sends as r2's MAC, and as itself inside 802.1Q and QinQ tags: nothing reaches r1."""
    before, dispatched = drops(lab, "a", "r3"), dispatch_drops(lab, "a")
    with Capture(lab, "r1", "eth0") as at_r1:
        send(lab, "r3", f"[Ether(src='{MAC['r2']}', dst='{MAC['r1']}')/IP(src='{IP['r2']}', dst='{IP['r1']}')"
                        f"/UDP(sport=9999, dport=9999)/Raw(b'forged-mac-r2'),"
                        f"Ether(src='{MAC['r3']}', dst='{MAC['r1']}')/Dot1Q(vlan=7)/IP(src='{IP['r2']}',"
                        f" dst='{IP['r1']}')/UDP(sport=9999, dport=9999)/Raw(b'forged-tag-1q'),"
                        f"Ether(src='{MAC['r3']}', dst='{MAC['r1']}', type=0x88a8)/Dot1Q(vlan=7)/Dot1Q(vlan=8)"
                        f"/IP(src='{IP['r2']}', dst='{IP['r1']}')/UDP(sport=9999, dport=9999)/Raw(b'forged-tag-qq')]")
    assert markers(at_r1, "forged-") == 0
    assert dispatch_drops(lab, "a") - dispatched >= COUNT
    assert drops(lab, "a", "r3") - before >= 2 * COUNT


def test_nd_spoofing_fails_and_is_counted(lab):
    """r3 advertises r2's IPv6 address as its own, and its own with r2's MAC, to r1: r1's
    neighbour entry for r2 keeps r2's MAC and its pings go on reaching r2."""
    assert lab.exec("r1", "ping", "-6", "-c1", "-W2", "fd00:71::2").returncode == 0
    before = drops(lab, "a", "r3")
    na = "ICMPv6ND_NA(tgt='{tgt}', R=0, S=0, O=1)/ICMPv6NDOptDstLLAddr(lladdr='{ll}')"
    send(lab, "r3", f"[Ether(src='{MAC['r3']}', dst='{MAC['r1']}')/IPv6(src='fd00:71::3', dst='fd00:71::1')/"
                    + na.format(tgt="fd00:71::2", ll=MAC["r3"]) + ","
                    f"Ether(src='{MAC['r3']}', dst='33:33:00:00:00:01')/IPv6(src='fd00:71::3', dst='ff02::1')/"
                    + na.format(tgt="fd00:71::2", ll=MAC["r3"]) + ","
                    f"Ether(src='{MAC['r3']}', dst='{MAC['r1']}')/IPv6(src='fd00:71::3', dst='fd00:71::1')/"
                    + na.format(tgt="fd00:71::3", ll=MAC["r2"]) + "]")
    assert MAC["r3"] not in neighbour(lab, "r1", "fd00:71::2")
    with Capture(lab, "r2", "eth0", "icmp6") as at_r2:
        assert lab.exec("r1", "ping", "-6", "-c3", "-i0.2", "-W2", "fd00:71::2").returncode == 0
    assert len(at_r2.fields("icmpv6.type == 128", "frame.number")) == 3
    assert drops(lab, "a", "r3") - before >= 3 * COUNT


def test_a_vip_is_allowed_and_nothing_else(lab):
    """vip may send from 10.71.0.100 (declared `allowed`), not from 10.71.0.101."""
    before = drops(lab, "c", "vip")
    with Capture(lab, "r1", "eth0", "udp port 9999") as at_r1:
        send(lab, "vip", f"[{udp('vip', '10.71.0.100', 'vip-allowed')}, {udp('vip', '10.71.0.101', 'vip-other')}]")
    assert markers(at_r1, "vip-allowed") == COUNT and markers(at_r1, "vip-other") == 0
    assert drops(lab, "c", "vip") - before >= COUNT


def test_a_tes_sends_only_from_the_address_it_reported(lab):
    """The TES's row carries the address it reported at admission."""
    before = drops(lab, "a", "t")
    with Capture(lab, "r1", "eth0", "udp port 9999") as at_r1:
        send(lab, "t", f"[{udp('t', IP['r2'], 'tes-forged')}, {udp('t', IP['t'], 'tes-honest')}]")
    assert markers(at_r1, "tes-forged") == 0 and markers(at_r1, "tes-honest") == COUNT
    assert drops(lab, "a", "t") - before >= COUNT
