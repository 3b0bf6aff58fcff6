"""`tenet trace`'s prediction, from the published tables alone, against real captures for each
addressing function; and `tenet verify` on the running lab."""
from __future__ import annotations

import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

from tenet.compute.trace import trace
from tenet.compute.trace_steps import Encapsulate, Rewrite
from tenet.lab.lab import Lab
from tenet.store.open import open_store
from tenet.store.snapshot import read_snapshot

from capture import Capture

TOPOLOGY = Path(__file__).with_name("trace.yaml")
M = "02:aa:00:00:00:01"


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


def snapshot(lab):
    store = open_store(lab.store_url)
    try:
        return read_snapshot(store)
    finally:
        store.close()


def predict(lab, vm: str, to: str):
    return trace(snapshot(lab), vm, to)


def ping(lab, vm: str, ip: str, ok: bool = True) -> None:
    r = lab.exec(vm, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-n", ip)
    assert (r.returncode == 0) == ok, r.stdout + r.stderr


def of(t, kind):
    return [s for s in t.steps if isinstance(s, kind)]


def requests(cap: Capture) -> set[tuple[str, str]]:
    return {(src, dst) for src, dst in cap.fields("icmp.type == 8", "eth.src", "eth.dst")}


def test_local_delivery_never_leaves_the_host(lab):
    t = predict(lab, "x1", "10.53.0.2")
    (d,) = t.deliveries
    assert d.host == "a" and not of(t, Encapsulate) and not of(t, Rewrite)
    with Capture(lab, d.host, d.port, "icmp") as port, Capture(lab, "a", "up0", "icmp") as wire:
        ping(lab, "x1", "10.53.0.2")
    assert requests(port) == {(d.src, d.dst)}
    assert requests(wire) == set()


def test_translation_puts_the_predicted_external_macs_on_the_wire(lab):
    t = predict(lab, "x1", "10.53.0.3")
    out, back = of(t, Rewrite)
    (d,) = t.deliveries
    with Capture(lab, "a", "up0", "icmp or udp port 4789") as wire, Capture(lab, d.host, d.port, "icmp") as port:
        ping(lab, "x1", "10.53.0.3")
    assert requests(wire) == {(out.src_to, out.dst_to)}  # external MACs, no encapsulation
    assert wire.fields("vxlan && icmp", "frame.number") == []
    assert requests(port) == {(d.src, d.dst)} == {(back.src_to, back.dst_to)}  # internal MACs again


def test_vxlan_header_is_the_predicted_one(lab):
    t = predict(lab, "x1", "10.53.0.4")
    (e,) = of(t, Encapsulate)
    (d,) = t.deliveries
    with Capture(lab, "c", "up0", "udp port 4789") as wire, Capture(lab, d.host, d.port, "icmp") as port:
        ping(lab, "x1", "10.53.0.4")
    seen = {(vni, src.split(",")[0], dst.split(",")[0], udp.split(",")[0])
            for vni, src, dst, udp in wire.fields("vxlan && icmp.type == 8", "vxlan.vni", "ip.src", "ip.dst", "udp.dstport")}
    assert seen == {(str(e.vni), e.outer_src, e.outer_dst, str(e.udp_port))}
    assert requests(port) == {(d.src, d.dst)}


def every_port(lab) -> list[tuple[str, str]]:
    """(host, port) of every VM in the lab: where a broadcast might show up."""
    snap = snapshot(lab)
    return sorted({(h, e.port) for h, ht in snap.tables.items() for t in ht.vns for e in t.entries if e.port}
                  | {(h, r.port) for h, ht in snap.tables.items() for t in ht.vns for r in t.routes if r.port})


def broadcast(lab, t, target: str, wire_host: str, wire_bpf: str):
    """ARP for `target` (nobody has it) from the traced source: the ports it reaches (its own
    excluded: a capture there sees it leave), and the VXLAN on a wire."""
    src = t.steps[0]
    ports = [p for p in every_port(lab) if p != (src.host, src.port)]
    with ExitStack() as stack:
        caps = {p: stack.enter_context(Capture(lab, p[0], p[1], "arp")) for p in ports}
        wire = stack.enter_context(Capture(lab, wire_host, "up0", wire_bpf))
        lab.exec(src.vm, "ping", "-c", "2", "-i", "0.3", "-W", "1", target)
    got = {p for p, c in caps.items() if c.fields(f"arp.dst.proto_ipv4 == {target}", "frame.number")}
    outer = {(vni, src, dst) for vni, src, dst in
             wire.fields(f"vxlan && arp.dst.proto_ipv4 == {target}", "vxlan.vni", "ip.src", "ip.dst")}
    return got, outer


def test_broadcast_by_multicast_group_reaches_the_predicted_ports(lab):
    t = predict(lab, "x1", "ff:ff:ff:ff:ff:ff")
    (e,) = of(t, Encapsulate)
    assert e.group and e.outer_dst == e.group
    got, outer = broadcast(lab, t, "10.53.0.77", "b", f"udp port 4789 and dst host {e.group}")
    assert got == {(d.host, d.port) for d in t.deliveries} and len(got) == 3
    assert outer == {(str(e.vni), e.outer_src, e.group)}


def test_broadcast_by_replication_reaches_the_predicted_ports(lab):
    t = predict(lab, "w1", "ff:ff:ff:ff:ff:ff")
    encaps = of(t, Encapsulate)
    got, outer = broadcast(lab, t, "10.53.0.78", "a", "udp port 4789")
    assert got == {(d.host, d.port) for d in t.deliveries} and len(got) == 2
    assert outer == {(str(e.vni), e.outer_src, e.outer_dst) for e in encaps} and len(outer) == 2


def test_routed_between_nves_as_predicted(lab):
    t = predict(lab, "ra", "10.54.0.100")  # rc: same physical network, router MACs on the wire
    out = of(t, Rewrite)[0]
    (d,) = t.deliveries
    with Capture(lab, "a", "up0", "icmp") as wire, Capture(lab, d.host, d.port, "icmp") as port:
        ping(lab, "ra", "10.54.0.100")
    assert requests(wire) == {(out.src_to, out.dst_to)}
    assert requests(port) == {(d.src, d.dst)}
    t = predict(lab, "ra", "10.54.0.200")  # rd: behind the router, VXLAN to c's router MAC
    (e,) = of(t, Encapsulate)
    out = of(t, Rewrite)[0]
    with Capture(lab, "c", "up0", "udp port 4789") as wire:
        ping(lab, "ra", "10.54.0.200")
    seen = {(vni, src.split(",")[0], dst.split(",")[0], mac.split(",")[-1]) for vni, src, dst, mac in
            wire.fields("vxlan && icmp.type == 8", "vxlan.vni", "ip.src", "ip.dst", "eth.dst")}
    assert seen == {(str(e.vni), e.outer_src, e.outer_dst, out.dst_to)}


def test_verify_finds_nothing_and_trace_prints(lab):
    tenet = [sys.executable, "-m", "tenet.cli.main"]
    r = subprocess.run([*tenet, "verify", "--lab", lab.name], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "no findings" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([*tenet, "trace", "--lab", lab.name, "--from", "x1", "--to", "10.53.0.4"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "VXLAN VNI 5301" in r.stdout and "delivered to 1 port(s)" in r.stdout, r.stdout + r.stderr
