"""The underlay accepts only its peers (agent/underlay_guard.py), proved with forged VXLAN.

From the router and from hosts that do not implement a VN, VXLAN carrying that VN's VNI (an
inner frame with a marker, to a VM's MAC and to broadcast) is sent to each host of the VN and
to its group; VNs' VNIs are sent by their own peers to another VN's group. Packet sockets in
every VM show no marker of those arrives, the hosts count the drops by chain, and the same
forgery from a real peer to the right address (the positive control: the method would see an
injection) and the VMs' own traffic in both BUM modes still flow.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from ipaddress import ip_interface
from pathlib import Path

import pytest

from tenet.agent.kernel.nftables import dropped
from tenet.agent.underlay_guard import FOREIGN, TUNNELS, UNKNOWN
from tenet.lab.lab import Lab
from waiting import wait

HERE = Path(__file__).parent
BROADCAST = "ff:ff:ff:ff:ff:ff"
COPIES = 3  # of each forged packet

# Every frame on eth0 until stdin closes: prints the markers seen, as JSON.
SNIFF = r"""
import json, select, socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("eth0", 0))
print("ready", flush=True)
seen = set()
while True:
    r, _, _ = select.select([s, sys.stdin], [], [], 30)
    if not r or sys.stdin in r:
        break
    data = s.recv(65535)
    i = data.find(b"UGMARK-")
    if i >= 0:
        seen.add(data[i + 7:].split(b".")[0].decode(errors="replace"))
print(json.dumps(sorted(seen)), flush=True)
"""

# VXLAN from this node's address argv[1]: for each [dst, vni, inner dst MAC, marker] in argv[2]
# (JSON), COPIES packets to dst:4789 (a group: out of argv[1]'s interface, no loop back).
FORGE = r"""
import json, socket, struct, sys
src, sends, copies = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 16)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
s.bind((src, 0))
for dst, vni, inner, marker in sends:
    frame = bytes.fromhex(inner.replace(":", "")) + bytes.fromhex("02bad0000001") + b"\x88\xb7"
    frame += (b"UGMARK-" + marker.encode()).ljust(46, b".")
    for _ in range(copies):
        s.sendto(struct.pack("!II", 0x08000000, vni << 8) + frame, (dst, 4789))
"""


@dataclass(frozen=True)
class Send:
    node: str  # the lab namespace it leaves from
    src: str  # its address there
    dst: str  # a host's underlay address, or a group
    vni: int
    inner: str  # the inner frame's destination MAC
    marker: str
    why: str
    counted_at: str = ""  # the host certain to count it as foreign (implementing the VNI, on its way)


@pytest.fixture(scope="module")
def lab():
    with Lab.load(HERE / "uguard.yaml") as lab:
        yield lab


@dataclass(frozen=True)
class World:
    ip: dict[str, str]  # host -> underlay address
    net: dict[str, str]  # host -> physical network
    router: dict[str, str]  # physical network -> the router's address on it
    vnid: dict[str, int]
    group: dict[str, str]  # multicast VNs
    hosts: dict[str, set[str]]  # VN -> hosts implementing it
    vm_at: dict[tuple[str, str], str]  # (VN, host) -> a VM of it there
    mac: dict[str, str]


def world(lab: Lab) -> World:
    intent = lab.intent
    hosts: dict[str, set[str]] = {}
    for vm in intent.vms:
        hosts.setdefault(vm.nics[0].network, set()).add(vm.host)
    addrs = lab.exec("rt", "ip", "-4", "-o", "addr", "show", check=True).stdout.split()
    router = {}
    for pn in intent.fabric.networks:
        router[pn.name] = next(a.split("/")[0] for a in addrs if "/" in a and pn.subnet.overlaps(ip_interface(a).network))
    return World(ip={h.name: str(h.ip) for h in intent.fabric.hosts},
                 net={h.name: h.network for h in intent.fabric.hosts}, router=router,
                 vnid={v.name: v.vnid for v in intent.vns},
                 group={v.name: str(v.group) for v in intent.vns if v.group}, hosts=hosts,
                 vm_at={(vm.nics[0].network, vm.host): vm.name for vm in intent.vms},
                 mac={vm.name: lab.mac(vm.name) for vm in intent.vms})


def forged(w: World) -> list[Send]:
    """What must not arrive: each VN's VNI from the router and from every host not implementing
    it, to each of its hosts (to a VM's MAC and to broadcast) and to its group; and each VN's
    VNI from its own peers (and the router) to every other VN's group."""
    out: list[Send] = []

    def add(node: str, src: str, dst: str, vn: str, inner: str, why: str) -> None:
        if dst in w.ip.values():
            at = next(h for h, a in w.ip.items() if a == dst)
        else:  # a group: ga implements every VN and joined every group; a sender beside it reaches it
            at = "ga" if node != "ga" and src in (*(w.ip[h] for h in w.ip if w.net[h] == w.net["ga"]),
                                                  w.router[w.net["ga"]]) else ""
        out.append(Send(node, src, dst, w.vnid[vn], inner, f"f{len(out):03d}", why, at))

    for vn, at in sorted(w.hosts.items()):
        strangers = [(h, w.ip[h], w.net[h]) for h in sorted(w.ip) if h not in at]
        strangers += [("rt", a, pn) for pn, a in sorted(w.router.items())]
        for node, src, pn in strangers:
            for host in sorted(at):
                if node == "rt" and w.net[host] != pn:
                    continue  # the router speaks to a host from its address on the host's network
                for inner in (w.mac[w.vm_at[vn, host]], BROADCAST):
                    add(node, src, w.ip[host], vn, inner, f"{vn}'s VNI from {node} ({src}) to {host}")
            if vn in w.group:
                add(node, src, w.group[vn], vn, BROADCAST, f"{vn}'s VNI from {node} ({src}) to its group")
        for other, group in sorted(w.group.items()):
            if other == vn:
                continue
            for node, src in [(h, w.ip[h]) for h in sorted(at)] + [("rt", a) for a in sorted(w.router.values())]:
                add(node, src, group, vn, BROADCAST, f"{vn}'s VNI from {node} ({src}) to {other}'s group")
    return out


def controls(w: World) -> list[tuple[Send, str]]:
    """The same forgery from a real peer to the right address, and the VM that must see it."""
    return [
        (Send("gb", w.ip["gb"], w.ip["ga"], w.vnid["m"], w.mac["ma"], "okunicast", "m from gb to ga"), "ma"),
        (Send("gd", w.ip["gd"], w.ip["ga"], w.vnid["r"], BROADCAST, "okreplica", "r from gd to ga"), "ra"),
        (Send("gb", w.ip["gb"], w.group["m"], w.vnid["m"], BROADCAST, "okgroup", "m from gb to m's group"), "ma"),
    ]


def counters(lab: Lab, hosts) -> dict[str, dict[str, int]]:
    return {h: dropped(lab.exec(h, "nft", "list", "table", "netdev", "tenet", check=True).stdout) for h in hosts}


def inject(lab: Lab, sends: list[Send]) -> None:
    by_sender: dict[tuple[str, str], list] = {}
    for s in sends:
        by_sender.setdefault((s.node, s.src), []).append([s.dst, s.vni, s.inner, s.marker])
    for (node, src), batch in by_sender.items():
        lab.exec(node, sys.executable, "-c", FORGE, src, json.dumps(batch), str(COPIES), check=True)


def test_nothing_but_peers_reaches_a_vn_and_every_drop_is_counted(lab):
    w = world(lab)
    bad, good = forged(w), controls(w)
    vms = sorted(w.mac)
    before = counters(lab, w.ip)
    sniffers = {vm: lab.popen(vm, sys.executable, "-c", SNIFF, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True) for vm in vms}
    try:
        for p in sniffers.values():
            assert p.stdout.readline().strip() == "ready"
        inject(lab, bad + [s for s, _ in good])
        time.sleep(1.5)  # what a router forwards by PIM, too
    finally:
        seen = {}
        for vm, p in sniffers.items():
            out, _ = p.communicate("", timeout=10)
            seen[vm] = set(json.loads(out.strip().splitlines()[-1]))
    why = {s.marker: s.why for s in bad}
    leaked = sorted(f"{why[m]} -> {vm}" for vm, ms in seen.items() for m in ms if m in why)
    assert leaked == [], leaked
    for s, vm in good:
        assert s.marker in seen[vm], f"control not seen: {s.why} -> {vm} (the method sees nothing)"
    after = counters(lab, w.ip)
    want = Counter(s.counted_at for s in bad if s.counted_at)
    for host, n in want.items():
        rose = after[host].get(FOREIGN, 0) - before[host].get(FOREIGN, 0)
        assert rose >= n * COPIES, f"{host} {FOREIGN}: counted {rose}, forged {n * COPIES}"
    assert any(after[h].get(UNKNOWN, 0) > before[h].get(UNKNOWN, 0) for h in w.ip)  # a VNI not implemented there


@pytest.mark.parametrize("vm,ip", [("ma", "10.73.0.2"), ("ma", "10.73.0.3"), ("mc", "10.73.0.2"),
                                   ("ra", "10.73.0.4"), ("rd", "10.73.0.1"), ("oa", "10.74.0.3")])
def test_peers_still_reach_each_other_in_both_bum_modes(lab, vm, ip):
    """Translated (ma-mb), encapsulated over the router with multicast BUM (ma-mc, mc-mb, oa-oc)
    and with head-end replication (ra-rd): neighbours flushed, so ARP crosses as BUM first. The
    guard raises no alarm for any of it (a new source's first multicast may wait on the router's
    PIM: retried)."""
    hosts = [h.name for h in lab.intent.fabric.hosts]
    before = counters(lab, hosts)
    lab.exec(vm, "ip", "neigh", "flush", "all")
    wait(lambda: lab.exec(vm, "ping", "-c1", "-W1", ip).returncode == 0, 10, f"{vm} reaching {ip}")
    assert lab.exec(vm, "ping", "-c3", "-i0.2", "-W1", ip).returncode == 0
    after = counters(lab, hosts)
    # (underlay_flooded may rise: another VN's BUM, flooded by a physical network to hosts not in it)
    alarms = (UNKNOWN, FOREIGN, TUNNELS)
    assert {h: {c: after[h].get(c, 0) for c in alarms} for h in hosts} == \
        {h: {c: before[h].get(c, 0) for c in alarms} for h in hosts}
