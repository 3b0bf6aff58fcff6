"""The adversarial campaign (issue 18): a hostile tenant VM and hostile underlay nodes send every
kind of frame an attacker would, each with a unique marker, and captures on the victims' VMs
count by marker what arrived where it must not. Tenant red (VN r, replicated) reuses every MAC
and IP of tenant blue (VN b, multicast); r1 on h1 is the attacker (adversary.yaml).

A VM's batch follows control frames that must arrive (to the sender's own VN's peers), and an
underlay node's batch is seen arriving on the hosts' uplinks, so that a capture that sees
nothing proves isolation rather than a dead path. The `test_port_security_*` and
`test_underlay_validation_*` cases assert what issue 18's items 1 and 2 promise."""
from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import ARP, Dot1Q, Ether
from scapy.packet import Raw

from hostile import Batch, group_mac, send, start_sending, udp, vxlan, watching
from tenet.compute.tables import Function
from tenet.lab import netns
from tenet.lab.demo import read_tables
from tenet.lab.lab import Lab
from tenet.lab.plan import Veth
from tenet.wire.discovery import ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION
from tenet.wire.eapol import ETHERTYPE as ETHERTYPE_EAPOL

HERE = Path(__file__).parent
BLUE, RED = ("b1", "b2", "b3", "b4"), ("r1", "r2", "r3", "r4")
ATTACKER = "r1"
BROADCAST = "ff:ff:ff:ff:ff:ff"
STRANGER = "02:66:66:66:66:66"  # a MAC no NIC of either VN has
LINK_LOCAL = ("01:80:c2:00:00:00", "01:80:c2:00:00:03", "01:80:c2:00:00:0e")  # STP, 802.1X PAE, LLDP
MULTICAST = ("33:33:00:00:00:01", "33:33:ff:00:00:02", "01:00:5e:00:00:01", "01:00:5e:00:00:fb", "01:00:5e:7f:ff:fa")
PEERS = RED[1:]  # the attacker's own VN: where a frame may arrive unless the design says not
ROGUE, ROGUE_IP = "rogue", "198.18.181.250"


@dataclass(frozen=True)
class Facts:
    """What an attacker could know: the lab's addresses and the published tables' external MACs."""

    mac: dict[str, str]  # VM -> internal MAC (red's equal blue's)
    ip: dict[str, str]  # VM -> IPv4 (red's equal blue's)
    vnid: dict[str, int]
    group: str  # VN b's group
    external: dict[str, tuple[str, str]]  # external MAC -> (VN, VM)
    underlay: dict[str, tuple[str, str, str]]  # host -> (network, IP, uplink MAC)
    router_node: str
    router: dict[str, tuple[str, str, str]]  # network -> (router's port, its IP, its MAC)


@dataclass(frozen=True)
class Rogue:
    """The foreign node on pa: its namespace and its uplink's MAC."""

    ns: str
    mac: str


def _link_mac(ns: str, dev: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/address"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def lab():
    with Lab.load(HERE / "adversary.yaml") as lab:
        yield lab


@pytest.fixture(scope="module")
def facts(lab) -> Facts:
    tables = read_tables(lab.store_url, lab.intent)
    external = {e.address: (t.vn, e.vm) for h in tables.values() for t in h.vns
                for e in t.entries if e.function is Function.TRANSLATE_L2}
    vms = {vm.name: vm for vm in lab.intent.vms}
    router = next(iter(lab.intent.fabric.routers))
    ports = {p.network: (f"u{i}", str(p.address.ip)) for i, p in enumerate(router.ports)}
    return Facts(
        mac={n: vm.nics[0].mac for n, vm in vms.items()},
        ip={n: str(vm.nics[0].ip.ip) for n, vm in vms.items()},
        vnid={vn.name: vn.vnid for vn in lab.intent.vns},
        group=tables["h1"].vn("b").group,
        external=external,
        underlay={h.name: (h.network, str(h.address.ip), _link_mac(lab.netns(h.name), "up0")) for h in lab.intent.fabric.hosts},
        router_node=router.name,
        router={pn: (dev, ip, _link_mac(lab.netns(router.name), dev)) for pn, (dev, ip) in ports.items()},
    )


@pytest.fixture(scope="module")
def rogue(lab, facts) -> Rogue:
    """A foreign node on physical network pa: a namespace the lab records (so `down` removes it
    even if this module dies) and wires into pa's switch, with an address but no tenet."""
    ns, pa = f"tn-{lab.name}-{ROGUE}", lab.netns("pa")
    lab.record.namespaces.append(ns)
    lab.record.save()
    netns.add(ns)
    netns.veth(Veth(ns, "up0", pa, "x0", 1550))
    for where, argv in ((pa, "ip link set x0 master br0 up"), (ns, f"ip addr add {ROGUE_IP}/24 dev up0"),
                        (ns, "ip link set up0 up"), (ns, f"ip route add 198.18.0.0/15 via {facts.router['pa'][1]}")):
        netns.run(["ip", "netns", "exec", where, *argv.split()], f"wiring the rogue node in {where}")
    for _, ip, _ in facts.underlay.values():  # the router resolves every host: nothing waits on ARP
        subprocess.run(["ip", "netns", "exec", ns, "ping", "-c1", "-W1", ip], capture_output=True)
    yield Rogue(ns, _link_mac(ns, "up0"))
    netns.delete(ns)
    lab.record.namespaces.remove(ns)
    lab.record.save()


# -- helpers -----------------------------------------------------------------------------------
def controls(batch: Batch, facts: Facts, sender: str, peers: tuple[str, ...]) -> dict[str, set[bytes]]:
    """Frames `sender` may send its own VN: unicast to each peer (translated or encapsulated)
    and a broadcast. They must arrive, or a silent capture proves nothing."""
    mac, ip = facts.mac[sender], facts.ip[sender]
    want = {vm: {batch.add(f"control to {vm}", lambda m, vm=vm: udp(mac, facts.mac[vm], ip, facts.ip[vm], m))} for vm in peers}
    b = batch.add("control broadcast", lambda m: udp(mac, BROADCAST, ip, "10.81.0.255", m))
    for vm in peers:
        want[vm].add(b)
    return want


def from_vm(lab, facts: Facts, batch: Batch, sender: str, watch: tuple[str, ...], refused: int = 0) -> dict[str, set[bytes]]:
    """`sender`'s controls to its VN's VMs in `watch` (first: spoofed sources that follow may
    poison its VN's bridges), then the batch, while every VM in `watch` captures. The controls
    must arrive; `refused` frames of the batch are ones the VM's own port drops (the sender's
    kernel says so: a veth refuses what exceeds its peer's MTU). Returns the markers seen."""
    ctl = Batch()
    want = controls(ctl, facts, sender, tuple(vm for vm in watch if vm in RED))
    with watching(lab, watch) as seen:
        assert send(lab.netns(sender), "eth0", ctl.frames) == (len(ctl.frames), 0)
        assert send(lab.netns(sender), "eth0", batch.frames) == (len(batch.frames) - refused, refused)
    assert {vm: len(ms - seen[vm]) for vm, ms in want.items() if ms - seen[vm]} == {}, "controls lost"
    return seen


def attack(lab, facts: Facts, batch: Batch, refused: int = 0) -> dict[str, set[bytes]]:
    """r1 sends the batch (after controls to its peers, which must arrive) while blue's VMs
    and red's others capture; the markers each saw."""
    return from_vm(lab, facts, batch, ATTACKER, BLUE + PEERS, refused)


# -- from a hostile tenant VM --------------------------------------------------------------------
def test_spoofed_external_macs_stay_in_their_vn(lab, facts):
    """r1 addresses every external MAC the controller published (read from the tables, as an
    attacker who learnt them off a physical network would), from its own, a stranger's and
    blue's external MACs; and sends from blue's external MACs to blue's internal ones."""
    batch, me = Batch(), facts.ip[ATTACKER]
    blue_ext = [e for e, (vn, _) in facts.external.items() if vn == "b"]
    assert {vm for _, vm in facts.external.values()} == set(BLUE + RED)  # every VM has a translated peer
    for _ in range(3):
        for ext, (vn, vm) in facts.external.items():
            for src in (facts.mac[ATTACKER], STRANGER, *blue_ext):
                batch.add(f"udp {src} -> {vn}/{vm}'s external {ext}", lambda mk: udp(src, ext, me, facts.ip[vm], mk))
        for src in blue_ext:
            for vm in BLUE:
                batch.add(f"udp external {src} -> {vm}", lambda mk: udp(src, facts.mac[vm], me, facts.ip[vm], mk))
    assert batch.leaks(attack(lab, facts, batch), BLUE) == {}


def test_broadcasts_and_link_local_groups_stay_in_their_vn(lab, facts):
    """Broadcast, the bridge-local groups (STP, 802.1X PAE, LLDP), IPv6 and IPv4 multicast,
    and the Ethernet address of blue's own VXLAN group. The PAE and LLDP groups are for the
    link alone (802.1D): not even red's own VMs receive them."""
    batch, me, src = Batch(), facts.ip[ATTACKER], facts.mac[ATTACKER]
    for _ in range(5):
        for dst in (BROADCAST, *LINK_LOCAL, *MULTICAST, group_mac(facts.group)):
            batch.add(f"udp -> {dst}", lambda mk: udp(src, dst, me, "10.81.0.255", mk))
            batch.add(f"arp -> {dst}", lambda mk: Ether(src=src, dst=dst) / ARP(op=1, hwsrc=src, psrc=me, pdst="10.81.0.2") / Raw(mk))
    seen = attack(lab, facts, batch)
    assert batch.leaks(seen, BLUE) == {}
    assert batch.only(lambda w: w.endswith(LINK_LOCAL[1:])).leaks(seen, PEERS) == {}


def test_arp_for_the_other_tenants_addresses_stays_in_its_vn(lab, facts):
    """Requests for blue's addresses (red's too), and replies claiming them, broadcast and unicast."""
    batch, me, src = Batch(), facts.ip[ATTACKER], facts.mac[ATTACKER]
    for _ in range(5):
        for vm in BLUE[1:]:
            ip, mac = facts.ip[vm], facts.mac[vm]
            for dst in (BROADCAST, mac):
                batch.add(f"who-has {ip} -> {dst}", lambda mk: Ether(src=src, dst=dst) / ARP(op=1, hwsrc=src, psrc=me, pdst=ip) / Raw(mk))
                batch.add(f"{ip} is-at {src} -> {dst}", lambda mk: Ether(src=src, dst=dst) / ARP(
                    op=2, hwsrc=src, psrc=ip, hwdst=dst, pdst=ip) / Raw(mk))
                batch.add(f"gratuitous {ip} -> {dst}", lambda mk: Ether(src=src, dst=dst) / ARP(op=1, hwsrc=src, psrc=ip, pdst=ip) / Raw(mk))
    assert batch.leaks(attack(lab, facts, batch), BLUE) == {}


def test_vlan_and_qinq_tags_stay_in_their_vn(lab, facts):
    """802.1Q (including VLAN 0, 1, the VN-IDs' low 12 bits and 4094), stacked 802.1Q and
    802.1ad QinQ, to blue's MACs and broadcast."""
    batch, me, src = Batch(), facts.ip[ATTACKER], facts.mac[ATTACKER]
    vlans = (0, 1, facts.vnid["b"] & 0xFFF, facts.vnid["r"] & 0xFFF, 4094)

    def ip(mk: bytes):
        return IP(src=me, dst="10.81.0.2") / UDP(dport=9, chksum=0) / Raw(mk)

    for _ in range(3):
        for dst in (BROADCAST, *(facts.mac[v] for v in BLUE[1:])):
            for v in vlans:
                batch.add(f"802.1Q {v} -> {dst}", lambda mk: Ether(src=src, dst=dst) / Dot1Q(vlan=v) / ip(mk))
                batch.add(f"802.1Q {v}/1 -> {dst}", lambda mk: Ether(src=src, dst=dst) / Dot1Q(vlan=v) / Dot1Q(vlan=1) / ip(mk))
                batch.add(f"802.1ad {v}/1 -> {dst}", lambda mk: Ether(src=src, dst=dst, type=0x88A8) / Dot1Q(vlan=v) / Dot1Q(vlan=1) / ip(mk))
    assert batch.leaks(attack(lab, facts, batch), BLUE) == {}


def test_nvo3_and_eapol_ethertypes_stay_in_their_vn(lab, facts):
    """NVO3 discovery and session EtherTypes and EAPOL (an EAPOL-Start and a bare EAP
    packet) to broadcast, the PAE group, blue's MACs and their external MACs. The NVE's
    control EtherTypes and the PAE group stop at the port: not even red's VMs receive them."""
    batch, src = Batch(), facts.mac[ATTACKER]
    bodies = {ETHERTYPE_DISCOVERY: b"\x01\x01\x00\x20", ETHERTYPE_SESSION: b"\x01\x05\x00\x20",
              ETHERTYPE_EAPOL: b"\x01\x01\x00\x00"}
    blue_ext = [e for e, (vn, _) in facts.external.items() if vn == "b"]
    for _ in range(5):
        for et, body in bodies.items():
            for dst in (BROADCAST, LINK_LOCAL[1], *(facts.mac[v] for v in BLUE[1:]), *blue_ext):
                batch.add(f"ethertype {et:#06x} -> {dst}", lambda mk: Ether(src=src, dst=dst, type=et) / Raw(body + mk))
        batch.add("eap packet -> pae", lambda mk: Ether(src=src, dst=LINK_LOCAL[1], type=ETHERTYPE_EAPOL)
                  / Raw(b"\x01\x00\x00\x05\x02\x01\x00\x05\x01" + mk))
    seen = attack(lab, facts, batch)
    assert batch.leaks(seen, BLUE) == {}
    control = (f"{ETHERTYPE_DISCOVERY:#06x}", f"{ETHERTYPE_SESSION:#06x}", "pae", LINK_LOCAL[1])
    assert batch.only(lambda w: any(c in w for c in control)).leaks(seen, PEERS) == {}


def test_runts_stay_in_their_vn(lab, facts):
    """Frames shorter than Ethernet's 60-byte minimum (the marker is their whole payload)."""
    batch, src = Batch(), facts.mac[ATTACKER]
    for _ in range(5):
        for size in (25, 30, 42, 59):
            for et in (0x0800, 0x0806, ETHERTYPE_DISCOVERY):
                for dst in (BROADCAST, *(facts.mac[v] for v in BLUE[1:])):
                    batch.add(f"runt {size} {et:#06x} -> {dst}", lambda mk: Ether(src=src, dst=dst, type=et) / Raw(mk.ljust(size - 14, b".")))
    assert batch.leaks(attack(lab, facts, batch), BLUE) == {}


def test_jumbos_reach_no_one(lab, facts):
    """r1 raises its own MTU to 9000 (it is root in its VM) and sends 1600- to 9000-byte
    frames: its port is 1500, so every one is dropped there (the veth reports it to the
    sender) and not even red's own VMs receive them."""
    batch, me, src = Batch(), facts.ip[ATTACKER], facts.mac[ATTACKER]
    for _ in range(5):
        for size in (1600, 4000, 9000):
            for vm in ("r2", "r3"):
                batch.add(f"{size} bytes -> {vm}", lambda mk: udp(src, facts.mac[vm], me, facts.ip[vm], mk, size - 42))
            batch.add(f"{size} bytes -> broadcast", lambda mk: udp(src, BROADCAST, me, "10.81.0.255", mk, size - 42))
    lab.exec(ATTACKER, "ip", "link", "set", "eth0", "mtu", "9000", check=True)
    try:
        assert batch.leaks(attack(lab, facts, batch, refused=len(batch.frames)), BLUE + PEERS) == {}
    finally:
        lab.exec(ATTACKER, "ip", "link", "set", "eth0", "mtu", "1500", check=True)


def test_vxlan_from_a_vm_never_decapsulates(lab, facts):
    """VXLAN with blue's VNI (and red's own) aimed at every host's underlay address, by its
    uplink MAC and by broadcast, carrying frames to blue's MACs."""
    batch, me, src = Batch(), facts.ip[ATTACKER], facts.mac[ATTACKER]
    for _ in range(2):
        for host, (_, hip, hmac) in facts.underlay.items():
            for outer in (BROADCAST, hmac):
                for vn in ("b", "r"):
                    for vm in ("b2", "b3"):
                        for dst in (BROADCAST, facts.mac[vm]):
                            batch.add(f"vxlan {vn} -> {host} ({outer}) inner -> {dst}", lambda mk: vxlan(
                                Ether(src=src, dst=outer), me, hip, facts.vnid[vn], udp(STRANGER, dst, me, facts.ip[vm], mk)))
    assert batch.leaks(attack(lab, facts, batch), BLUE) == {}


def test_a_broadcast_storm_costs_the_other_vn_no_ping(lab, facts):
    """r1 storms red at 2,000 broadcasts/s for 3 s (every copy replicated to three hosts)
    while blue's VMs ping each other across both paths: not one ping lost, no storm frame in blue."""
    storm, src, me = Batch(), facts.mac[ATTACKER], facts.ip[ATTACKER]
    storm.copies("storm", lambda mk: udp(src, BROADCAST, me, "10.81.0.255", mk, 200), 6000)
    pairs = (("b1", "b2"), ("b1", "b3"), ("b2", "b4"), ("b3", "b4"))
    with watching(lab, BLUE + ("r3",)) as seen:
        sender = start_sending(lab.netns(ATTACKER), "eth0", storm.frames, 2000)
        pings = [lab.popen(a, "ping", "-q", "-c50", "-i0.05", "-W1", facts.ip[b], stdout=subprocess.PIPE, text=True)
                 for a, b in pairs]
        outs = [p.communicate(timeout=30)[0] for p in pings]
        assert sender.stdout.read().split() == ["6000", "0"] and sender.wait(30) == 0
    received = {pair: re.search(r"(\d+) packets transmitted, (\d+) received", out).groups() for pair, out in zip(pairs, outs)}
    assert received == {pair: ("50", "50") for pair in pairs}
    assert storm.leaks(seen, BLUE) == {}
    assert storm.count(seen, ("r3",)) >= 0.9 * len(storm.frames)  # it was a storm: red's own VM got it


# -- from hostile underlay nodes (issue 18, item 2: fail until the underlay checks its peers) -----
def underlay_batch(facts: Facts, targets: list[tuple[str, str, str]], src_mac: str, src_ip: str) -> Batch:
    """VXLAN with each VN's VNI to each target (label, MAC, IP), carrying frames to every VM's
    MAC and broadcast; 3 rounds."""
    batch = Batch()
    for _ in range(3):
        for label, dmac, dip in targets:
            for vn in ("b", "r"):
                for dst in (BROADCAST, *(facts.mac[v] for v in BLUE)):
                    batch.add(f"vxlan {vn} from {src_ip} -> {label}, inner -> {dst}", lambda mk: vxlan(
                        Ether(src=src_mac, dst=dmac), src_ip, dip, facts.vnid[vn], udp(STRANGER, dst, "10.81.0.99", "10.81.0.255", mk)))
    return batch


def inject(lab, sends: list[tuple[str, str, Batch]], arriving: dict[str, Batch]) -> dict[str, list[str]]:
    """Send each (namespace, iface, batch) while every VM and every host's uplink captures.
    Each host's uplink must see the frames `arriving` names for it (the injection path is
    alive); returns the frames that reached a VM, by VM."""
    with watching(lab, BLUE + RED, tuple(arriving)) as seen:
        for ns, iface, batch in sends:
            assert send(ns, iface, batch.frames) == (len(batch.frames), 0)
    lost = {h: len(b.what.keys() - seen[h]) for h, b in arriving.items() if b.what.keys() - seen[h]}
    assert lost == {}, "the injected frames did not reach the hosts' uplinks"
    leaks: dict[str, list[str]] = {}
    for _, _, batch in sends:
        for vm, what in batch.leaks(seen, BLUE + RED).items():
            leaks.setdefault(vm, []).extend(what)
    return leaks


def to_each_host(facts: Facts, batches: list[Batch]) -> dict[str, Batch]:
    """What each host's uplink must see: the frames addressed to it by name."""
    return {h: Batch(what={m: w for b in batches for m, w in b.what.items() if f"-> {h}," in w}) for h in facts.underlay}


def test_underlay_validation_vxlan_from_the_router(lab, facts):
    """The router (an underlay node, no host of any VN) sends VXLAN with each VNI to every host
    on each of its ports, and to blue's group on both networks (red's VNI: the wrong group)."""
    sends = []
    for pn, (dev, rip, rmac) in facts.router.items():
        targets = [(h, hmac, hip) for h, (hpn, hip, hmac) in facts.underlay.items() if hpn == pn]
        targets.append((f"group {facts.group} on {pn}", group_mac(facts.group), facts.group))
        sends.append((lab.netns(facts.router_node), dev, underlay_batch(facts, targets, rmac, rip)))
    assert inject(lab, sends, to_each_host(facts, [b for _, _, b in sends])) == {}


def test_underlay_validation_vxlan_from_a_foreign_address(lab, facts, rogue):
    """A foreign node on pa sends VXLAN with each VNI to every host (through the router to
    pb's) and to blue's group (red's VNI: the wrong group)."""
    via = facts.router["pa"][2]
    targets = [(h, hmac if hpn == "pa" else via, hip) for h, (hpn, hip, hmac) in facts.underlay.items()]
    targets.append((f"group {facts.group}", group_mac(facts.group), facts.group))
    batch = underlay_batch(facts, targets, rogue.mac, ROGUE_IP)
    assert inject(lab, [(rogue.ns, "up0", batch)], to_each_host(facts, [batch])) == {}


def test_underlay_validation_wrong_group(lab, facts, rogue):
    """Red's VNI sent to blue's group from a host of red (h2's address, forged on pa): the
    source is a peer of red, but red is replicated and has no group — a host must refuse it."""
    _, h2, _ = facts.underlay["h2"]
    batch = Batch()
    for _ in range(5):
        for dst in (BROADCAST, *(facts.mac[v] for v in RED)):
            batch.add(f"vxlan r from {h2} -> group {facts.group}, inner -> {dst}", lambda mk: vxlan(
                Ether(src=rogue.mac, dst=group_mac(facts.group)), h2, facts.group, facts.vnid["r"],
                udp(STRANGER, dst, "10.81.0.99", "10.81.0.255", mk)))
    assert inject(lab, [(rogue.ns, "up0", batch)], {"h1": batch}) == {}  # h1: on pa, in blue's group


def test_translated_frames_from_a_foreign_source_are_dropped(lab, facts, rogue):
    """The foreign node sends plain frames to every external MAC on pa, from its own MAC, a
    stranger's, and the external MACs of VMs behind the router (no translated peer of pa's
    hosts). (Forging a translated peer's external MAC is the physical network's to stop.)"""
    on_pa = {h for h, (pn, _, _) in facts.underlay.items() if pn == "pa"}
    hosts = {vm.name: vm.host for vm in lab.intent.vms}
    here = {e: v for e, v in facts.external.items() if hosts[v[1]] in on_pa}
    beyond = [e for e, v in facts.external.items() if hosts[v[1]] not in on_pa]
    assert here and beyond
    batch = Batch()
    for _ in range(5):
        for ext, (vn, vm) in here.items():
            for src in (rogue.mac, STRANGER, *beyond):
                batch.add(f"plain {src} -> {hosts[vm]}, {vn}/{vm}'s external {ext}", lambda mk: udp(src, ext, ROGUE_IP, facts.ip[vm], mk))
    assert inject(lab, [(rogue.ns, "up0", batch)], to_each_host(facts, [batch])) == {}


# -- from a hostile tenant VM, spoofing its own VN's MACs (last: it poisons its VN's bridges) ----
def test_spoofed_internal_macs_stay_in_their_vn(lab, facts):
    """r1 sends from and to blue's MACs (which red reuses): IPv4 and ARP, 5 rounds. Late in the
    module: the spoofed sources teach red's bridges wrong ports for red's own MACs (item 1)."""
    batch, me = Batch(), facts.ip[ATTACKER]
    for _ in range(5):
        for src in (*(facts.mac[v] for v in BLUE), STRANGER):
            for vm in BLUE:
                dst = facts.mac[vm]
                batch.add(f"udp {src} -> {dst}", lambda mk: udp(src, dst, me, facts.ip[vm], mk))
                batch.add(f"arp {src} -> {dst}", lambda mk: Ether(src=src, dst=dst) / ARP(
                    op=1, hwsrc=src, psrc=me, pdst=facts.ip[vm]) / Raw(mk))
    assert batch.leaks(attack(lab, facts, batch), BLUE) == {}


# -- inside one VN (issue 18, item 1: fail until port security lands) -----------------------------
SPOOFER, NEIGHBOURS = "r3", ("r1", "r2", "r4")  # r3 (h3) reaches r4 translated, r1 and r2 encapsulated


def spoofing(lab, facts: Facts, batch: Batch) -> dict[str, list[str]]:
    """r3 sends the batch after its own legitimate controls; what reached its VN's other VMs."""
    return batch.leaks(from_vm(lab, facts, batch, SPOOFER, NEIGHBOURS), NEIGHBOURS)


def test_port_security_arp_spoofing_inside_a_vn(lab, facts):
    """r3 claims r2's address (ARP replies and gratuitous requests, from its own MAC): the
    attack that took r2's traffic in the campaign. Nothing may arrive, and r1 keeps r2's MAC."""
    me, ip = facts.mac[SPOOFER], facts.ip["r2"]
    assert lab.exec("r1", "ping", "-c1", "-W1", ip).returncode == 0
    batch = Batch()
    for _ in range(5):
        for dst in (BROADCAST, facts.mac["r1"], facts.mac["r4"]):
            batch.add(f"{ip} is-at {me} -> {dst}", lambda mk: Ether(src=me, dst=dst) / ARP(op=2, hwsrc=me, psrc=ip, hwdst=dst, pdst=ip) / Raw(mk))
            batch.add(f"gratuitous {ip} from {me} -> {dst}", lambda mk: Ether(src=me, dst=dst) / ARP(op=1, hwsrc=me, psrc=ip, pdst=ip) / Raw(mk))
    leaks = spoofing(lab, facts, batch)
    neigh = lab.exec("r1", "ip", "neigh", "show", ip, "dev", "eth0").stdout
    assert (leaks, me in neigh) == ({}, False)


def test_port_security_ip_source_spoofing_inside_a_vn(lab, facts):
    """r3 sends IPv4 from its own MAC but others' addresses (r2's, r1's, an unassigned one, one
    outside the subnet)."""
    me = facts.mac[SPOOFER]
    batch = Batch()
    for _ in range(5):
        for src_ip in (facts.ip["r2"], facts.ip["r1"], "10.81.0.99", "192.0.2.1"):
            for vm in NEIGHBOURS:
                batch.add(f"ip {src_ip} -> {vm}", lambda mk: udp(me, facts.mac[vm], src_ip, facts.ip[vm], mk))
            batch.add(f"ip {src_ip} -> broadcast", lambda mk: udp(me, BROADCAST, src_ip, "10.81.0.255", mk))
    assert spoofing(lab, facts, batch) == {}


def test_port_security_mac_spoofing_inside_a_vn(lab, facts):
    """r3 sends from r2's and r1's MACs and a stranger's, with its own address."""
    ip = facts.ip[SPOOFER]
    batch = Batch()
    for _ in range(5):
        for src in (facts.mac["r2"], facts.mac["r1"], STRANGER):
            for vm in NEIGHBOURS:
                batch.add(f"mac {src} -> {vm}", lambda mk: udp(src, facts.mac[vm], ip, facts.ip[vm], mk))
            batch.add(f"mac {src} -> broadcast", lambda mk: udp(src, BROADCAST, ip, "10.81.0.255", mk))
    assert spoofing(lab, facts, batch) == {}
