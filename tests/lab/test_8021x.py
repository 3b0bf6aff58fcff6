"""802.1X on behalf of VMs (seed 000): a host behind an access switch authenticates its VMs
with their own MACs; the switch (an NVE) provisions each MAC onto the VN RADIUS names."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenet.agent.rates import stage_names
from tenet.model.tenancy import port_name, switch_port_name

from capture import Capture
from waiting import wait
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).with_name("dot1x.yaml")
PORT = switch_port_name("host6")
STAGE = stage_names(PORT)[0]  # where what arrives on the port from a MAC limited upstream is shaped


def ping(lab, vm, ip):
    return lab.exec(vm, "ping", "-c2", "-i0.2", "-W1", ip).returncode == 0


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        wait(lambda: {lab.mac("V"), lab.mac("W")} <= set(lab.endpoints()), 20, "V and W authorized")
        lab.wait_converged(20)  # and the switch has applied them
        yield lab


def test_host_vouches_for_its_vm_and_the_switch_provisions_it(lab):
    v = lab.endpoints()[lab.mac("V")]
    assert (v["host"], v["port"], v["vn"], v["identity"]) == ("tor1", PORT, "n2", "vm-v")
    assert ping(lab, "V", "10.61.0.1")  # S on hypervisor h1, same physical network: translated
    assert ping(lab, "V", "10.61.0.3")  # S3 on h3, behind the router: VXLAN
    # the VM ran nothing: the EAPOL came from host6, with the VM's MAC as its source
    log = Path(lab.process("proxy", "host6").log)
    before = len(log.read_text())  # the log is appended to: only what the restarted proxy writes counts
    with Capture(lab, "tor1", PORT, "ether proto 0x888e") as cap:
        lab.stop_process("proxy", "host6")
        lab.start_proxies()  # a restarted proxy asks again for every VM it has
        wait(lambda: "EAP for " + lab.mac("V") in log.read_text()[before:], 10, "re-auth")
    starts = {row[0] for row in cap.fields("eapol.type == 1", "eth.src")}
    assert lab.mac("V") in starts and lab.mac("W") in starts
    assert ping(lab, "V", "10.61.0.1")  # re-authentication cut nothing off


def iperf(lab, client, server, ip, seconds=3):
    srv = lab.popen(server, "iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: "LISTEN" in lab.exec(server, "ss", "-ltn", "sport = :5201").stdout, 5, "iperf3 server")
        r = lab.exec(client, "iperf3", "-c", ip, "-t", str(seconds), "-J", timeout=30)
        return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
    finally:
        srv.terminate()
        srv.wait(5)


WIRE = 1514 / 1448  # a full TCP segment's Ethernet frame over its payload: HTB counts frames


@pytest.mark.parametrize("sender", ["S", "S3"])  # translated path, VXLAN path
def test_rate_from_radius_holds_per_mac_on_the_shared_port(lab, sender):
    """vm-v's Accept says 20 Mbit/s: V's frames get their own HTB class on the switch port,
    W — behind the same port — is not held back by it."""
    classes = lab.exec("tor1", "tc", "class", "show", "dev", PORT).stdout
    assert "rate 20Mbit ceil 20Mbit" in classes, classes
    wire = iperf(lab, sender, "V", "10.61.0.20") * WIRE
    assert abs(wire - 20e6) <= 0.05 * 20e6, f"{wire / 1e6:.2f} Mbit/s on the wire toward V"
    assert iperf(lab, "Z", "W", "10.61.0.21", 2) > 200e6  # the same port, another MAC: unshaped


@pytest.mark.parametrize("receiver", ["S", "S3"])  # translated path, VXLAN path
def test_rate_from_radius_holds_what_the_mac_sends_on_the_shared_port(lab, receiver):
    """vm-v's `rate: 20mbit` is also WISPr-Bandwidth-Max-Up: V's frames arriving on the switch
    port go through the port's stage, in their own HTB class; W — behind the same port, no
    limit — still sends at memory speed (its frames skip the stage)."""
    classes = lab.exec("tor1", "tc", "class", "show", "dev", STAGE).stdout
    assert "class htb 7e04:" in classes and "rate 20Mbit ceil 20Mbit" in classes, classes
    ip = {"S": "10.61.0.1", "S3": "10.61.0.3"}[receiver]
    wire = iperf(lab, "V", receiver, ip) * WIRE
    assert abs(wire - 20e6) <= 0.1 * 20e6, f"{wire / 1e6:.2f} Mbit/s on the wire from V"
    assert iperf(lab, "W", "Z", "10.61.0.1", 2) > 200e6  # the same port, another MAC: unshaped


def sent_bytes(lab, dev):
    """What the root qdisc of `dev` has sent since it was made (a new one starts at 0)."""
    out = lab.exec("tor1", "tc", "-s", "qdisc", "show", "dev", dev, "root").stdout
    return int(re.search(r"Sent (\d+) bytes", out).group(1))


def test_coa_changes_the_up_rate_live_in_place(lab):
    """An RFC 5176 CoA-Request with only WISPr-Bandwidth-Max-Up re-rates V's upstream class on
    the port's stage; its HTB root is kept (its byte counter goes on), the down class stays."""
    v = lab.mac("V")
    before = sent_bytes(lab, STAGE)
    assert before > 0
    assert dynauth(lab, "coa", v, "up=8000000") == 44  # CoA-ACK
    wait(lambda: "rate 8Mbit ceil 8Mbit" in lab.exec("tor1", "tc", "class", "show", "dev", STAGE).stdout, 5, "8 Mbit/s")
    assert "rate 20Mbit ceil 20Mbit" in lab.exec("tor1", "tc", "class", "show", "dev", PORT).stdout  # down: as it was
    assert sent_bytes(lab, STAGE) >= before  # the same root qdisc, re-rated in place
    wire = iperf(lab, "V", "S", "10.61.0.1", 3) * WIRE
    assert abs(wire - 8e6) <= 0.1 * 8e6, f"{wire / 1e6:.2f} Mbit/s from V after the CoA"
    assert dynauth(lab, "coa", v, "up=20000000") == 44  # back, for the tests after this one
    wait(lambda: "rate 20Mbit ceil 20Mbit" in lab.exec("tor1", "tc", "class", "show", "dev", STAGE).stdout, 5, "20")


def test_class_of_service_from_radius_is_marked(lab):
    """vm-v's Accept carries User-Priority-Table 5 (RFC 4675): tor1 marks V's IPv4 frames DSCP
    CS5 (40) whatever path they take; W's stay unmarked."""
    with Capture(lab, "h1", "up0", "icmp") as cap:  # V -> S crosses pn1 translated
        assert ping(lab, "V", "10.61.0.1")
        assert ping(lab, "W", "10.61.0.1")
    marks = {tuple(r) for r in cap.fields("icmp.type == 8", "ip.src", "ip.dsfield.dscp")}
    assert marks == {("10.61.0.20", "40"), ("10.61.0.21", "0")}, marks


def test_a_mac_radius_rejects_cannot_send(lab):
    m = lab.mac("M")
    assert m not in lab.endpoints()
    with Capture(lab, "S", "eth0", "icmp or arp") as cap:
        assert not ping(lab, "M", "10.61.0.1")
    assert [r for r in cap.fields("eth.src == " + m, "frame.number")] == []
    drops = lab.exec("tor1", "nft", "list", "chain", "netdev", "tenet", "access_in").stdout
    assert "policy drop" in drops


FORGE = """
import socket, sys
from ipaddress import IPv4Address
from tenet.wire import arp
forged, target = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
req = arp.Arp(arp.REQUEST, forged, IPv4Address("10.61.0.99"), "00:00:00:00:00:00", IPv4Address(target))
for _ in range(5):
    s.send(arp.frame("ff:ff:ff:ff:ff:ff", forged, req))
"""


def test_a_vm_forging_an_authorized_mac_is_stopped_by_its_host(lab):
    """Threat model: V's MAC is authorized on host6's switch port; W, behind the same port,
    forges it. The switch cannot tell them apart, the host can: each VM has its own port."""
    with Capture(lab, "S", "eth0", "arp") as cap:
        r = lab.exec("W", sys.executable, "-c", FORGE, lab.mac("V"), "10.61.0.1")
        assert r.returncode == 0, r.stderr
    assert cap.fields("arp.src.proto_ipv4 == 10.61.0.99", "frame.number") == []
    guard = lab.exec("host6", "nft", "list", "chain", "bridge", "tenet_proxy", "vm_sources").stdout
    line = next(x for x in guard.splitlines() if port_name("W", 0) in x)
    assert int(line.split("counter packets ")[1].split()[0]) >= 5, guard


def test_vns_stay_apart_on_one_switch_port(lab):
    """W (n3) and V (n2) share host6's link; Z (n3) reuses S's address 10.61.0.1."""
    assert ping(lab, "W", "10.61.0.1")
    neigh = lab.exec("W", "ip", "neigh", "show", "10.61.0.1").stdout
    assert lab.mac("Z") in neigh and lab.mac("S") not in neigh
    assert not ping(lab, "W", "10.61.0.3")  # S3 is in n2


def test_a_vns_broadcasts_reach_only_its_own_vms_behind_the_port(lab):
    """Frames go down the shared port untagged, so the switch sends each member of the VN its
    own copy of a broadcast, and host6's bridge keeps VMs of different VNs apart. Else Z's and
    W's ARP requests (n3) would reach V (n2), which would re-point 10.61.0.1 at Z."""
    for vm in ("Z", "W"):
        lab.exec(vm, "ip", "neigh", "flush", "all")
    with Capture(lab, "V", "eth0", "arp") as on_v, Capture(lab, "W", "eth0", "arp") as on_w:
        assert ping(lab, "Z", "10.61.0.21")  # Z asks for W across the fabric
        assert ping(lab, "W", "10.61.0.1")  # W asks for Z on host6's bridge, then up the port
    assert not on_v.fields("arp", "eth.src"), "n3's ARP reached V"
    asked = {tuple(r) for r in on_w.fields("arp.opcode == 1", "arp.src.proto_ipv4", "eth.dst")}
    assert ("10.61.0.1", lab.mac("W")) in asked, asked  # the broadcast arrived as W's own copy
    assert ping(lab, "V", "10.61.0.1") and lab.mac("S") in lab.exec("V", "ip", "neigh", "show", "10.61.0.1").stdout


def test_mab_admits_a_known_mac_that_speaks_no_eapol(lab):
    """B runs no supplicant and its host holds no secret for it: its first ARP makes tor1 try
    MAB (User-Name = User-Password = 020000000b0b), which RADIUS accepts into n2. C's MAC is
    unknown to RADIUS: it stays out."""
    b, c = lab.mac("B"), lab.mac("C")
    wait(lambda: ping(lab, "B", "10.61.0.1"), 15, "B admitted by MAB and reaching S")
    assert (lab.endpoints()[b]["vn"], lab.endpoints()[b]["identity"]) == ("n2", "")
    assert not ping(lab, "C", "10.61.0.1") and c not in lab.endpoints()


def test_a_mab_macs_up_rate_holds_beside_another_limited_mac(lab):
    """B's MAB user has `rate_up: 10mbit` (only): B gets its own class on the port's stage,
    beside V's; nothing limits what is sent to B."""
    b = lab.mac("B")
    wait(lambda: b in lab.endpoints(), 15, "B admitted by MAB")
    lab.wait_converged(20)
    classes = lab.exec("tor1", "tc", "class", "show", "dev", STAGE).stdout
    assert "rate 10Mbit ceil 10Mbit" in classes and "rate 20Mbit ceil 20Mbit" in classes, classes
    wire = iperf(lab, "B", "S", "10.61.0.1") * WIRE
    assert abs(wire - 10e6) <= 0.1 * 10e6, f"{wire / 1e6:.2f} Mbit/s on the wire from B"
    assert iperf(lab, "S", "B", "10.61.0.23", 2) > 200e6  # toward B: no limit


def dynauth(lab, kind, mac_, *extra):
    """What a RADIUS server's operator sends (RFC 5176), from the RADIUS node to the switch:
    `extra` are rates, "5000000" (down) or "up=5000000" / "down=5000000"."""
    argv = [sys.executable, "-m", "tenet.aaa.dynauth_client", "--nas", str(lab.intent.fabric.host("tor1").ip),
            "--secret-file", str(lab.record.dir / "radius.secret"), "--mac", mac_, kind]
    for arg in extra:
        direction, _, bps = arg.rpartition("=")
        argv += [f"--{direction or 'down'}", bps]
    r = lab.exec("aaa", *argv)
    assert r.returncode in (0, 1), r.stderr
    return int(r.stdout)


def test_coa_changes_the_rate_live_and_disconnect_cuts_the_mac_off(lab):
    v = lab.mac("V")
    assert dynauth(lab, "coa", v, "5000000") == 44  # CoA-ACK
    wait(lambda: "rate 5Mbit ceil 5Mbit" in lab.exec("tor1", "tc", "class", "show", "dev", PORT).stdout, 5, "5 Mbit/s")
    wire = iperf(lab, "S", "V", "10.61.0.20", 2) * WIRE
    assert abs(wire - 5e6) <= 0.05 * 5e6, f"{wire / 1e6:.2f} Mbit/s toward V after the CoA"
    assert dynauth(lab, "coa", "02:00:00:00:99:99", "1000") == 45  # CoA-NAK: no such session
    assert dynauth(lab, "disconnect", v) == 41  # Disconnect-ACK
    wait(lambda: v not in lab.endpoints(), 5, "V's deauthorization")
    wait(lambda: not ping(lab, "V", "10.61.0.1"), 5, "V cut off")  # once the switch's tables say so
    lab.stop_process("proxy", "host6")
    lab.start_proxies()  # the host vouches again: V is back (RADIUS still accepts it)
    wait(lambda: v in lab.endpoints(), 15, "V re-authorized")
    wait(lambda: ping(lab, "V", "10.61.0.1"), 10, "V reaching S again")


def test_switch_agent_restart_keeps_authorizations_and_traffic(lab):
    """The switch's agent (and its admission process) restarts: authorizations are adopted
    from the store, nobody re-authenticates, a 50 Hz ping through the switch loses nothing."""
    w = lab.mac("W")
    logins = Path(lab.process("radius", "aaa").log).read_text().count("Login OK: [vm-w]")
    pinger = lab.popen("W", "ping", "-i0.02", "-W1", "10.61.0.1", stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    lab.restart_agent("tor1")
    lab.wait_converged(20)
    time.sleep(2)
    pinger.send_signal(signal.SIGINT)
    summary = pinger.communicate(timeout=10)[0]
    sent, got = (int(x) for x in re.search(r"(\d+) packets transmitted, (\d+) received", summary).groups())
    assert sent > 50 and sent == got, summary
    assert w in lab.endpoints()
    assert Path(lab.process("radius", "aaa").log).read_text().count("Login OK: [vm-w]") == logins


def test_logoff_when_the_vm_goes(lab):
    v = lab.mac("V")
    lab.exec("host6", "ip", "link", "del", port_name("V", 0), check=True)  # the VM is removed
    wait(lambda: v not in lab.endpoints(), 10, "V's deauthorization")
    assert "LOGOFF for " + v in Path(lab.process("proxy", "host6").log).read_text()
    wait(lambda: not ping(lab, "S", "10.61.0.20"), 5, "V unreachable")
    # the guard names the published port, not the device: it stands before a port comes back,
    # so a re-created V sends nothing unguarded and its EAPOL-Start waits for no nftables change
    guard = lab.exec("host6", "nft", "list", "chain", "bridge", "tenet_proxy", "vm_sources").stdout
    assert f'iifname "{port_name("V", 0)}" ether saddr != {v} counter' in guard, guard
