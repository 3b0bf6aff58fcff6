"""IPv6 inside VNs, with real packets: neighbour discovery and ping -6 across every addressing
function and both BUM modes, two VNs that reuse each other's IPv6 addresses and MACs kept
apart, and the physical wire carrying external MACs only (ipv6.yaml)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tenet.compute.tables import Function
from tenet.lab.lab import Lab
from tenet.store import published
from tenet.store.open import open_store

from capture import Capture

TOPOLOGY = Path(__file__).with_name("ipv6.yaml")
RED, BLUE = ("m1", "m2", "m3", "m4"), ("b1", "b2", "b3", "b4")  # twins: same MACs and IPv6 addresses
ECHO = "icmpv6.type == 128 || icmpv6.type == 129"
ND = "icmpv6.type == 135 || icmpv6.type == 136"


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


def external_macs(lab):
    """External MAC -> (VN, VM), as the controller published them to translating peers."""
    store = open_store(lab.store_url)
    try:
        return {e.address: (t.vn, e.vm) for h in lab.intent.fabric.hosts
                for t in published.read(store, h.name).vns
                for e in t.entries if e.function is Function.TRANSLATE_L2}
    finally:
        store.close()


def extmac(lab, vn, vm):
    return next(ext for ext, owner in external_macs(lab).items() if owner == (vn, vm))


def mac(lab, vm):
    return next(v for v in lab.intent.vms if v.name == vm).nics[0].mac


def ping6(lab, node, ip, count=3):
    r = lab.exec(node, "ping", "-6", "-c", str(count), "-i", "0.2", "-W", "2", "-n", ip)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def forget_neighbours(lab, *vms):
    """So that the next ping starts with neighbour discovery."""
    for vm in vms:
        lab.exec(vm, "ip", "-6", "neigh", "flush", "dev", "eth0")


def in_echos(lab, vm):
    for line in lab.exec(vm, "cat", "/proc/net/snmp6").stdout.splitlines():
        name, value = line.split()
        if name == "Icmp6InEchos":
            return int(value)
    raise AssertionError("no Icmp6InEchos")


def captures(lab, vms, bpf="icmp6"):
    caps = {vm: Capture(lab, vm, "eth0", bpf) for vm in vms}
    for c in caps.values():
        c.__enter__()
    return caps


def stop(caps):
    for c in caps.values():
        c.__exit__(None, None, None)


@pytest.mark.parametrize("src,dst", [
    ("m1", "fd00:61::2"), ("m1", "fd00:61::3"), ("m1", "fd00:61::33"), ("m1", "fd00:61::4"),  # multicast BUM
    ("b1", "fd00:61::2"), ("b1", "fd00:61::3"), ("b1", "fd00:61::33"), ("b1", "fd00:61::4"),  # replicated BUM
    ("m1", "fe80::16:ff:fe00:3%eth0"), ("b4", "fe80::16:ff:fe00:3%eth0"),  # the kernel's own link-local
    ("t1", "fd00:64::2"), ("t1", "fd00:64::3"), ("t3", "fd00:64::2"),  # layered over `base`
])
def test_ping6_across_every_addressing_function(lab, src, dst):
    forget_neighbours(lab, src)
    ping6(lab, src, dst)


def test_same_host_stays_on_the_host(lab):
    forget_neighbours(lab, "m1", "m2")
    with Capture(lab, "a", "up0") as cap:
        ping6(lab, "m1", "fd00:61::2")
    assert cap.fields(ECHO, "frame.number") == []


@pytest.mark.parametrize("vn,src,dst", [("red", "m1", "m3"), ("blue", "b1", "b3")])
def test_translated_wire_carries_external_macs_and_nd_keeps_internal_ones(lab, vn, src, dst):
    """Echoes and unicast ND cross pn1 as plain Ethernet between external MACs; the ND
    options' link-layer addresses stay internal, which is what the VMs must see."""
    forget_neighbours(lab, src, dst)
    s_ext, d_ext, s_int, d_int = extmac(lab, vn, src), extmac(lab, vn, dst), mac(lab, src), mac(lab, dst)
    with Capture(lab, "a", "up0") as cap:  # the underlay wire of host a
        ping6(lab, src, "fd00:61::3")
    requests = cap.fields("icmpv6.type == 128 && !vxlan", "eth.src", "eth.dst")
    replies = cap.fields("icmpv6.type == 129 && !vxlan", "eth.src", "eth.dst")
    assert requests and all(r == [s_ext, d_ext] for r in requests), requests
    assert replies and all(r == [d_ext, s_ext] for r in replies), replies
    unicast_nd = cap.fields(f"({ND}) && !vxlan", "eth.src", "eth.dst", "icmpv6.opt.linkaddr")
    assert [r for r in unicast_nd if {r[0], r[1]} == {s_ext, d_ext}], "no unicast ND of the pair crossed pn1"
    owners = external_macs(lab)
    for eth_src, eth_dst, option in unicast_nd:  # the pair's, and any NUD probe of others on the wire
        assert eth_src in owners and eth_dst in owners and owners[eth_src][0] == owners[eth_dst][0]
        assert option in ("", mac(lab, owners[eth_src][1])), (eth_src, option)  # the sender's internal MAC
    assert any(r == [d_ext, s_ext, d_int] for r in unicast_nd), unicast_nd  # e.g. the advertisement
    # solicitations to 33:33:ff:… cross only inside VXLAN (the VN's BUM), never as plain Ethernet
    assert cap.fields("eth.dst[0:2] == 33:33 && !vxlan", "frame.number") == []
    assert cap.fields(f"vxlan && eth.dst == 33:33:ff:00:00:03 && icmpv6.type == 135", "frame.number")
    # an internal MAC never appears in an Ethernet header outside VXLAN
    assert cap.fields(f"!vxlan && (eth.addr == {s_int} || eth.addr == {d_int})", "frame.number") == []
    neigh = lab.exec(src, "ip", "-6", "neigh", "show", "fd00:61::3", "dev", "eth0").stdout
    assert f"lladdr {d_int}" in neigh, neigh  # the VM sees its peer's own MAC


@pytest.mark.parametrize("src,vni", [("m1", "5601"), ("b1", "5602")])
def test_across_router_encapsulates_with_the_vns_vni(lab, src, vni):
    c_ip = str(lab.intent.fabric.host("c").ip)
    forget_neighbours(lab, src)
    with Capture(lab, "c", "up0", "udp port 4789") as cap:
        ping6(lab, src, "fd00:61::4")
    rows = cap.fields("vxlan && icmpv6.type == 128", "vxlan.vni", "ip.dst")
    assert rows and {r[0] for r in rows} == {vni}, rows
    assert all(r[1] == c_ip for r in rows), rows


def test_layered_vn_carries_ipv6_in_vxlan_in_vxlan(lab):
    forget_neighbours(lab, "t1")
    with Capture(lab, "c", "up0", "udp port 4789") as cap:
        ping6(lab, "t1", "fd00:64::3")
    assert {tuple(r) for r in cap.fields("icmpv6.type == 128", "vxlan.vni")} == {("5603,5604",)}
    with Capture(lab, "a", "up0", "udp port 4789") as cap:  # to b: `base` translates under `top`
        ping6(lab, "t1", "fd00:64::2")
    assert {tuple(r) for r in cap.fields("icmpv6.type == 128", "vxlan.vni")} == {("5604",)}


@pytest.mark.parametrize("src,target,members", [("m1", "fd00:61::77", RED), ("b1", "fd00:61::78", BLUE)])
def test_solicitations_flood_within_their_vn_only(lab, src, target, members):
    """A solicited-node multicast NS is the VN's BUM: every other member gets it (group or
    head-end replication), the twin VN's VMs none."""
    others = [vm for vm in RED + BLUE if vm != src]
    caps = captures(lab, others)
    lab.exec(src, "ping", "-6", "-c", "2", "-W", "1", target)  # nobody has it: NS, unanswered
    stop(caps)
    group = "33:33:ff:00:00:" + target[-2:]
    seen = {vm: bool(c.fields(f"icmpv6.nd.ns.target_address == {target} && eth.dst == {group}", "frame.number"))
            for vm, c in caps.items()}
    assert seen == {vm: vm in members for vm in others}


def test_same_addresses_and_macs_in_two_vns_stay_isolated(lab):
    forget_neighbours(lab, *RED, *BLUE)
    before = {vm: in_echos(lab, vm) for vm in RED + BLUE}
    caps = captures(lab, BLUE)
    ping6(lab, "m2", "fd00:61::1", 2)  # local
    ping6(lab, "m3", "fd00:61::1", 2)  # translated
    ping6(lab, "m4", "fd00:61::1", 2)  # encapsulated
    ping6(lab, "m1", "fd00:61::3", 1)
    ping6(lab, "m1", "fd00:61::4", 1)
    stop(caps)
    leaked = {vm: c.fields(f"{ECHO} || {ND}", "icmpv6.type", "ipv6.src", "ipv6.dst") for vm, c in caps.items()}
    assert leaked == {vm: [] for vm in BLUE}  # no echo, no solicitation, no advertisement of red's
    mid = {vm: in_echos(lab, vm) for vm in RED + BLUE}
    ping6(lab, "b2", "fd00:61::1", 1)
    ping6(lab, "b3", "fd00:61::1", 1)
    ping6(lab, "b4", "fd00:61::1", 1)
    after = {vm: in_echos(lab, vm) for vm in RED + BLUE}
    assert {vm: mid[vm] - before[vm] for vm in ("m1", "m3", "m4", "b1", "b3", "b4")} == \
        {"m1": 6, "m3": 1, "m4": 1, "b1": 0, "b3": 0, "b4": 0}
    assert {vm: after[vm] - mid[vm] for vm in ("m1", "b1")} == {"m1": 0, "b1": 3}


def test_virtual_routers_hold_ipv6_addresses_also_when_created_or_copied(lab):
    ping6(lab, "m1", "fd00:61::fe")  # g, declared, on host c
    made = []
    try:
        lab.vrouters.create("g2", "b", "red", [{"network": "red", "ip6": ["fd00:61::f2/64"]}])
        made.append("g2")
        ping6(lab, "m1", "fd00:61::f2")
        intent = lab.vrouters.copy("g2", "g3", "a")  # the lowest free address of the prefix
        made.append("g3")
        assert next(v for v in intent.vms if v.name == "g3").nics[0].ip6[0].compressed == "fd00:61::5/64"
        ping6(lab, "m4", "fd00:61::5")
    finally:
        for vr in reversed(made):
            lab.vrouters.destroy(vr)
