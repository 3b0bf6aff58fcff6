"""Each addressing function carries real packets in real namespaces, and tenants stay apart."""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenet.compute.tables import Function
from tenet.lab.lab import Lab
from tenet.store import keys, published
from tenet.store.open import open_store
from tenet.store.records import AgentState, AgentStatus

from capture import Capture

SMALL = Path(__file__).with_name("small.yaml")


@pytest.fixture(scope="module")
def lab():
    with Lab.load(SMALL) as lab:
        yield lab


def tables(lab, host):
    store = open_store(lab.store_url)
    try:
        return published.read(store, host)
    finally:
        store.close()


def extmac(lab, host, vn, vm):
    """A VM's external MAC as the controller published it (seen from a translating peer)."""
    for h in lab.intent.fabric.hosts:
        t = tables(lab, h.name).vn(vn)
        for e in t.entries if t else ():
            if e.vm == vm and e.function is Function.TRANSLATE_L2:
                return e.address
    raise AssertionError(f"no external MAC for {vm}")


def ping(lab, node, ip, count=3):
    r = lab.exec(node, "ping", "-c", str(count), "-i", "0.2", "-W", "2", "-n", ip)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def in_echos(lab, vm):
    lines = [l.split() for l in lab.exec(vm, "cat", "/proc/net/snmp").stdout.splitlines() if l.startswith("Icmp:")]
    return int(lines[1][lines[0].index("InEchos")])


def test_same_host_no_modification(lab):
    with Capture(lab, "a", "up0", "icmp") as cap:
        ping(lab, "x1", "10.50.0.2")
    assert cap.fields("icmp", "frame.number") == []  # never left host a


def test_same_network_translates_l2_without_encapsulation(lab):
    x1, y = extmac(lab, "b", "v1", "x1"), extmac(lab, "a", "v1", "y")
    with Capture(lab, "a", "up0") as cap:  # the underlay wire leaving host a
        ping(lab, "x1", "10.50.0.3")
    requests = cap.fields("icmp.type == 8", "eth.src", "eth.dst")
    replies = cap.fields("icmp.type == 0", "eth.src", "eth.dst")
    assert requests and all(r == [x1, y] for r in requests), requests
    assert replies and all(r == [y, x1] for r in replies), replies
    assert cap.fields("udp.port == 4789 && !(ip.dst == 224.0.0.0/4)", "frame.number") == []
    # the internal MAC appears only inside VXLAN (the ARP broadcast), never as an outer address
    assert cap.fields("eth.addr == 02:aa:00:00:00:01 && !vxlan", "frame.number") == []


def test_across_router_encapsulates_vxlan_with_vni(lab):
    c_ip = str(lab.intent.fabric.host("c").ip)
    with Capture(lab, "c", "up0", "udp port 4789") as cap:  # the underlay wire into host c
        ping(lab, "x1", "10.50.0.4")
    rows = cap.fields("vxlan && icmp", "vxlan.vni", "ip.src", "ip.dst", "eth.src")
    assert rows, "no VXLAN-encapsulated ICMP seen on pn2"
    assert {r[0] for r in rows} == {"5101"}
    assert any(r[2].split(",")[0] == c_ip for r in rows)  # outer destination: host c (inner follows)


def test_broadcast_reaches_its_vn_only(lab):
    vms = ["x2", "y", "z", "w1", "w2", "w3"]
    caps = [Capture(lab, vm, "eth0", "arp") for vm in vms]
    for c in caps:
        c.__enter__()
    lab.exec("x1", "ping", "-c", "2", "-W", "1", "10.50.0.77")  # nobody has it: ARP broadcasts
    for c in caps:
        c.__exit__(None, None, None)
    seen = {vm: bool(c.fields("arp.dst.proto_ipv4 == 10.50.0.77", "frame.number")) for vm, c in zip(vms, caps)}
    assert seen == {"x2": True, "y": True, "z": True, "w1": False, "w2": False, "w3": False}


def test_replication_mode_broadcast(lab):
    caps = {vm: Capture(lab, vm, "eth0", "arp") for vm in ("w2", "w3", "x2", "z")}
    for c in caps.values():
        c.__enter__()
    lab.exec("w1", "ping", "-c", "2", "-W", "1", "10.50.0.78")
    for c in caps.values():
        c.__exit__(None, None, None)
    seen = {vm: bool(c.fields("arp.dst.proto_ipv4 == 10.50.0.78", "frame.number")) for vm, c in caps.items()}
    assert seen == {"w2": True, "w3": True, "x2": False, "z": False}


def test_overlapping_mac_and_ip_stay_isolated(lab):
    before = {vm: in_echos(lab, vm) for vm in ("x1", "w1")}
    ping(lab, "y", "10.50.0.1", 3)  # v1: reaches x1
    ping(lab, "w2", "10.50.0.1", 2)  # v2: reaches w1 (same MAC and IP as x1)
    ping(lab, "w3", "10.50.0.1", 2)  # v2, translated path
    after = {vm: in_echos(lab, vm) for vm in ("x1", "w1")}
    assert after["x1"] - before["x1"] == 3
    assert after["w1"] - before["w1"] == 4


# In a VM's namespace: a veth pair, a socket bound to one end sends a DISCOVER, and an unbound
# socket (as the NVE's, on every port) reports each frame it reads as "<port> <pkttype>".
OWN_FRAMES = r"""
import socket
from tenet.ethernet import packet_socket
from tenet.wire.discovery import BROADCAST, Message, MsgType, frame
every, tx = packet_socket(), packet_socket()
tx.bind(("tq0", 0))
every.settimeout(0.5)
tx.send(frame(BROADCAST, "02:00:00:00:00:99", Message(MsgType.DISCOVER)))
try:
    while True:
        _, addr = every.recvfrom(2048)
        print(addr[0], addr[2])
except socket.timeout:
    pass
"""


def test_packet_sockets_read_only_frames_they_receive(lab):
    """The classic-BPF filter of tenet's packet sockets drops outgoing frames in the kernel: a
    socket that sends on every port never reads its own (or a bridge's flooded) frames."""
    lab.exec("x1", "ip", "link", "add", "tq0", "type", "veth", "peer", "name", "tq1", check=True)
    try:
        lab.exec("x1", "ip", "link", "set", "tq0", "up", check=True)
        lab.exec("x1", "ip", "link", "set", "tq1", "up", check=True)
        out = lab.exec("x1", sys.executable, "-c", OWN_FRAMES, check=True).stdout.split("\n")
        assert [l for l in out if l] == ["tq1 1"]  # PACKET_BROADCAST on the receiving end, once
    finally:
        lab.exec("x1", "ip", "link", "del", "tq0")


def test_agent_restart_loses_no_packets(lab):
    flows = [lab.popen("x1", "ping", "-i", "0.02", "-n", "-q", "-w", "6", ip, stdout=subprocess.PIPE, text=True)
             for ip in ("10.50.0.3", "10.50.0.4", "10.50.0.2")]
    time.sleep(1)
    old = lab.process("agent", "a").pid
    new = lab.restart_agent("a")
    assert new.pid != old
    lab.wait_converged(20)
    outs = [f.communicate(timeout=15)[0] for f in flows]
    for out in outs:
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert m and int(m[1]) > 100 and m[1] == m[2], out
    status = AgentStatus.from_json(open_store(lab.store_url).get(keys.status("a")).value)
    assert status.state is AgentState.CONVERGED


def test_tables_cli_prints_seed_columns(lab):
    cmd = [sys.executable, "-m", "tenet.cli.main", "tables", "a", "--vn", "v1", "--lab", lab.name]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "No modification" in r.stdout and "Translate L2 address" in r.stdout and "Encapsulate" in r.stdout
