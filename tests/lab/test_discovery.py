"""NVO3 auto-attachment with a real FreeRADIUS, real frames and real namespaces."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenet.agent.rates import stage_names
from tenet.controller.hold import HOLD
from tenet.model.tenancy import port_name
from tenet.store import keys, published
from tenet.store.open import open_store
from tenet.store.records import AdmissionReady, EndpointReport
from tenet.wire.discovery import Message, MsgType, Reason, ReasonCode, Tlv, TlvType, frame

from capture import Capture
from waiting import wait
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).with_name("discover.yaml")


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        lab.wait_attached("T", timeout=15)
        lab.wait_attached("V", timeout=15)
        yield lab


def links(lab, node):
    return lab.exec(node, "ip", "-br", "link").stdout


def test_tes_attaches_and_reaches_vms_on_other_hosts(lab):
    assert lab.exec("T", "ping", "-c3", "-i0.2", "-W2", "10.60.0.1").returncode == 0  # S: across the router
    assert lab.exec("T", "ping", "-c3", "-i0.2", "-W2", "10.60.0.2").returncode == 0  # S2: same network
    ep = lab.endpoints()[lab.mac("T")]
    assert ep["vn"] == "n1" and ep["host"] == "h1" and ep["identity"] == "alice"
    # from the Access-Accept: `rate: 50mbit` is WISPr-Bandwidth-Max-Down and -Max-Up
    assert (ep["provisioning"]["rate_down_bps"], ep["provisioning"]["rate_up_bps"]) == (50_000_000, 50_000_000)
    # nothing about T was declared: the controller learned it from the agent's report
    assert all(n.join.value == "discover" for n in next(v for v in lab.intent.vms if v.name == "T").nics)


def test_cli_lists_attached_tes_and_admission_processes(lab):
    tenet = [sys.executable, "-m", "tenet.cli.main"]
    r = subprocess.run([*tenet, "endpoints", "--lab", lab.name, "--json"], capture_output=True, text=True, check=True)
    t = next(e for e in json.loads(r.stdout) if e["mac"] == lab.mac("T"))
    assert (t["identity"], t["host"], t["vn"]) == ("alice", "h1", "n1")
    r = subprocess.run([*tenet, "lab", "status", lab.name], capture_output=True, text=True, check=True)
    assert r.stdout.count("serves n1, n2") == len(lab.intent.fabric.hosts)


def test_operator_detach_ends_the_session_and_the_tes_comes_back(lab):
    """`tenet detach` (RFC 5176 Disconnect in spirit): V's NVE sends TERMINATE(admin) and
    removes it; V rediscovers and, RADIUS still accepting bob, attaches with a new session."""
    v = lab.mac("V")
    old = lab.endpoints()[v]["session"]
    r = subprocess.run([sys.executable, "-m", "tenet.cli.main", "detach", v.upper().replace(":", "-"),
                        "--lab", lab.name, "--why", "policy changed"], capture_output=True, text=True)
    assert r.returncode == 0 and "asked h1" in r.stdout, r.stderr
    wait(lambda: lab.endpoints().get(v, {}).get("session") not in (None, old), 10, "V's new session")
    assert "session ended: terminated" in Path(lab.process("tes", "V.eth0").log).read_text()
    bad = subprocess.run([sys.executable, "-m", "tenet.cli.main", "detach", "02:99:99:99:99:99", "--lab", lab.name],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "no attached TES has MAC 02:99:99:99:99:99" in bad.stdout + bad.stderr


def test_tes_selects_the_access_switch_over_the_hypervisor(lab):
    """W starts afresh once the lab is quiet (at the lab's start, h1 admits four TESs at once on
    two shared cores and may answer after the 20 ms window): it knows no NVE yet, so it waits
    the window, and both offers are in it."""
    w = lab.mac("W")
    wait(lambda: w in lab.endpoints(), 15, "W's attachment")
    old = lab.endpoints()[w]["session"]
    lab.start_tes(only="W")
    wait(lambda: lab.endpoints().get(w, {}).get("session") not in (None, old), 15, "W's new session")
    assert lab.endpoints()[w]["host"] == "h4"  # h1 (hypervisor, capability 100) offered too
    selected = [line for line in Path(lab.process("tes", "W.eth0").log).read_text().splitlines() if " selected " in line]
    assert selected[-1].endswith("(access_switch, capability 10) among 2 offers")
    assert lab.exec("W", "ping", "-c2", "-i0.2", "-W2", "10.60.0.1").returncode == 0


def test_tes_rediscovers_when_its_nve_stops_answering(lab):
    """Freeze h4's admission process (SIGSTOP, by the PID it published): W's hellos go
    unanswered, W gives h4 up after 3 missed acks, rediscovers and attaches through h1 — the
    only other NVE on its access LAN — and reaches its peers again. (s2, attached to h4 over
    UDP, moves too; the server tests below start it afresh.)"""
    w = lab.mac("W")
    wait(lambda: w in lab.endpoints() and lab.endpoints()[w]["host"] == "h4", 15, "W on h4")
    store = open_store(lab.store_url)
    pid = AdmissionReady.from_json(store.get(keys.admission("h4")).value).pid
    store.close()
    os.kill(pid, signal.SIGSTOP)
    try:
        def on_h1():
            return any(EndpointReport.from_json(kv.value).mac == w for kv in _range(lab, f"{keys.endpoints_prefix()}h1/"))
        wait(on_h1, 20, "W's attachment through h1")
        assert "nve-silent" in Path(lab.process("tes", "W.eth0").log).read_text()
        wait(lambda: lab.exec("W", "ping", "-c1", "-W1", "10.60.0.1").returncode == 0, 10, "W reaching S via h1")
    finally:
        os.kill(pid, signal.SIGCONT)  # h4 wakes up, finds W silent, and expires its old session


def _range(lab, prefix):
    s = open_store(lab.store_url)
    try:
        return s.range(prefix)
    finally:
        s.close()


def test_rate_from_the_access_accept_shapes_traffic_toward_the_tes(lab):
    """alice's Access-Accept carries WISPr-Bandwidth-Max-Down 50 Mbit/s: T's port gets a token
    bucket, and a TCP stream from another host toward T is held to it (an unlimited VM on the
    same path runs at memory speed)."""
    qdisc = lab.exec("h1", "tc", "qdisc", "show", "dev", port_name("T", 0)).stdout
    assert "tbf 7e01: root" in qdisc and "rate 50Mbit" in qdisc, qdisc
    server = lab.popen("T", "iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: "LISTEN" in lab.exec("T", "ss", "-ltn", "sport = :5201").stdout, 5, "iperf3 server")
        r = lab.exec("S2", "iperf3", "-c", "10.60.0.10", "-t", "3", "-J", timeout=30)
        bps = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
        assert 30e6 < bps <= 52.5e6, f"{bps / 1e6:.1f} Mbit/s toward T"
    finally:
        server.terminate()
        server.wait(5)


WIRE = 1514 / 1448  # a full TCP segment's Ethernet frame over its payload: tbf counts frames


def test_rate_from_the_access_accept_holds_what_the_tes_sends(lab):
    """alice's `rate: 50mbit` is also WISPr-Bandwidth-Max-Up: T's port hands what arrives from T
    to its stage (a veth pair, nftables `fwd`), whose token bucket holds T's TCP stream to
    S2 — translated, straight to h2 — to 50 Mbit/s on the wire; every ingress hook of the
    port, and T's place in the bridge, moved to the stage's other end."""
    shaper, arrival = stage_names(port_name("T", 0))
    qdisc = lab.exec("h1", "tc", "qdisc", "show", "dev", shaper).stdout
    assert "tbf 7e01: root" in qdisc and "rate 50Mbit" in qdisc, qdisc
    assert "master tnb6001" in lab.exec("h1", "ip", "link", "show", arrival).stdout
    assert "master" not in lab.exec("h1", "ip", "link", "show", port_name("T", 0)).stdout
    wire = wire_from_t(lab)
    assert abs(wire - 50e6) <= 0.1 * 50e6, f"{wire / 1e6:.1f} Mbit/s on the wire from T"
    assert lab.exec("T", "ping", "-c2", "-i0.2", "-W2", "10.60.0.1").returncode == 0  # VXLAN to h3 too


def test_a_server_attached_over_udp_is_held_upstream_too(lab):
    """s1 (alice, 50 Mbit/s) reaches h1 through an L3 access tunnel: the tunnel device leaves the
    bridge for its stage like a VM port, and what s1 sends to S2 is held to the limit."""
    s1 = server(lab, "s1")
    lab.wait_attached("s1", timeout=15)
    lab.wait_converged(20)  # and h1 has applied it
    tunnel = lab.endpoints()[s1.nic.mac]["port"]
    shaper, arrival = stage_names(tunnel)
    assert "rate 50Mbit" in lab.exec("h1", "tc", "qdisc", "show", "dev", shaper).stdout
    assert "master tnb6001" in lab.exec("h1", "ip", "link", "show", arrival).stdout
    wait(lambda: lab.exec("s1", "ping", "-c1", "-W1", "10.60.0.2").returncode == 0, 10, "s1 reaching S2")
    server_ = lab.popen("S2", "iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: "LISTEN" in lab.exec("S2", "ss", "-ltn", "sport = :5201").stdout, 5, "iperf3 server")
        r = lab.exec("s1", "iperf3", "-c", "10.60.0.2", "-t", "3", "-O", "1", "-J", timeout=30)  # slow start left out
        goodput = json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
    finally:
        server_.terminate()
        server_.wait(5)
    # the tunnel's frames are the inner ones (VXLAN is decapsulated before the stage)
    wire = goodput * WIRE
    assert abs(wire - 50e6) <= 0.1 * 50e6, f"{wire / 1e6:.1f} Mbit/s on the wire from s1"


def wire_from_t(lab) -> float:
    """Bits/s on the wire from T to S2 over 3 s of iperf3 (goodput x 1514/1448)."""
    server = lab.popen("S2", "iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: "LISTEN" in lab.exec("S2", "ss", "-ltn", "sport = :5201").stdout, 5, "iperf3 server")
        r = lab.exec("T", "iperf3", "-c", "10.60.0.2", "-t", "3", "-O", "1", "-J", timeout=30)  # slow start left out
        return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] * WIRE
    finally:
        server.terminate()
        server.wait(5)


def coa_up(lab, nve, mac, bps):
    """An RFC 5176 CoA-Request from the RADIUS node carrying only WISPr-Bandwidth-Max-Up."""
    r = lab.exec("aaa", sys.executable, "-m", "tenet.aaa.dynauth_client", "--nas", str(lab.intent.fabric.host(nve).ip),
                 "--secret-file", str(lab.record.dir / "radius.secret"), "--mac", mac, "coa", "--up", str(bps))
    assert r.returncode in (0, 1), r.stderr
    return int(r.stdout)


def test_coa_changes_a_tes_up_rate_live_in_place(lab):
    """A CoA for T (an NVO3 session, not 802.1X) re-rates its stage's token bucket in place —
    the qdisc's byte counter goes on — and leaves the rate toward T alone."""
    shaper, _ = stage_names(port_name("T", 0))
    sent = lambda: int(re.search(r"Sent (\d+) bytes", lab.exec("h1", "tc", "-s", "qdisc", "show", "dev", shaper).stdout).group(1))  # noqa: E731
    before = sent()
    assert coa_up(lab, "h1", lab.mac("T"), 20_000_000) == 44  # CoA-ACK
    wait(lambda: "rate 20Mbit" in lab.exec("h1", "tc", "qdisc", "show", "dev", shaper).stdout, 5, "20 Mbit/s")
    assert sent() >= before and "rate 50Mbit" in lab.exec("h1", "tc", "qdisc", "show", "dev", port_name("T", 0)).stdout
    assert lab.endpoints()[lab.mac("T")]["provisioning"]["rate_up_bps"] == 20_000_000
    wire = wire_from_t(lab)
    assert abs(wire - 20e6) <= 0.1 * 20e6, f"{wire / 1e6:.1f} Mbit/s on the wire from T after the CoA"
    assert coa_up(lab, "h1", lab.mac("T"), 50_000_000) == 44
    wait(lambda: "rate 50Mbit" in lab.exec("h1", "tc", "qdisc", "show", "dev", shaper).stdout, 5, "50 Mbit/s again")


def test_address_assigned_by_radius_is_applied_and_withdrawn(lab):
    lab.wait_attached("X", timeout=15)
    assert "10.60.0.40/24" in lab.exec("X", "ip", "-4", "-br", "addr", "show", "eth0").stdout  # Framed-IP-Address
    assert lab.endpoints()[lab.mac("X")]["ip"] == "10.60.0.40/24"
    assert lab.exec("X", "ping", "-c2", "-i0.2", "-W2", "10.60.0.1").returncode == 0
    lab.stop_process("tes", "X.eth0")  # the lease ends with the session
    assert "10.60.0.40" not in lab.exec("X", "ip", "-4", "-br", "addr", "show", "eth0").stdout


def test_wrong_password_no_attachment_and_data_dropped(lab):
    u = lab.mac("U")
    assert u not in lab.endpoints()
    with Capture(lab, "S", "eth0", "icmp or arp") as cap:
        r = lab.exec("U", "ping", "-c3", "-i0.2", "-W1", "10.60.0.1")
    assert r.returncode != 0
    assert cap.fields(f"eth.src == {u} || arp.src.proto_ipv4 == 10.60.0.11", "frame.number") == []
    gate = lab.exec("h1", "nft", "list", "chain", "netdev", "tenet", "gate").stdout
    assert re.search(r"counter packets [1-9]\d* ", gate), gate  # dropped in the kernel, at the port
    assert "Login incorrect: [mallory]" in Path(lab.process("radius", "aaa").log).read_text()


def test_agent_restart_keeps_sessions_and_traffic(lab):
    """Restart h1's agent (and with it its admission process): T keeps its session — the new
    admission process adopts it from the store — and a 50 Hz ping from T loses nothing."""
    t = lab.mac("T")
    session = lab.endpoints()[t]["session"]
    pinger = lab.popen("T", "ping", "-i0.02", "-W1", "10.60.0.2", stdout=subprocess.PIPE, text=True)
    time.sleep(0.5)
    lab.restart_agent("h1")
    lab.wait_converged(20)
    time.sleep(4)  # past 3 hello intervals: a lost session would have shown by now
    pinger.send_signal(signal.SIGINT)
    summary = pinger.communicate(timeout=10)[0]
    m = re.search(r"(\d+) packets transmitted, (\d+) received", summary)
    assert m and int(m.group(1)) > 100 and m.group(1) == m.group(2), summary
    assert lab.endpoints()[t]["session"] == session
    assert "session ended" not in Path(lab.process("tes", "T.eth0").log).read_text()


def test_forged_and_stale_session_ids_are_ignored(lab):
    t = lab.mac("T")
    session = lab.endpoints()[t]["session"]
    forged = Message(MsgType.TERMINATE, (session + 1) % 2**32 or 1, 6001, (Tlv(TlvType.REASON, Reason(ReasonCode.ADMIN, "forged")),))
    wrong_src = Message(MsgType.TERMINATE, session, 6001, (Tlv(TlvType.REASON, Reason(ReasonCode.ADMIN, "spoofed")),))
    script = (
        "import sys; from tenet.ethernet import packet_socket; s = packet_socket(); s.bind(('eth0', 0)); "
        "[s.send(bytes.fromhex(h)) for h in sys.argv[1:]]"
    )
    frames = [frame("ff:ff:ff:ff:ff:ff", t, forged).hex(),  # right MAC, unknown session id
              frame("ff:ff:ff:ff:ff:ff", "02:66:66:66:66:66", wrong_src).hex()]  # right id, another MAC
    r = lab.exec("T", sys.executable, "-c", script, *frames)
    assert r.returncode == 0, r.stderr
    time.sleep(1.5)
    assert t in lab.endpoints()  # still attached
    assert lab.exec("T", "ping", "-c2", "-i0.2", "-W2", "10.60.0.2").returncode == 0


def test_discovery_frames_never_enter_the_vn(lab):
    """T's port is bridged into n1 (T is admitted). A DISCOVER it broadcasts again must reach
    h1's admission — an OFFER comes back — and no VM of n1: not S2 on h2, which would see it
    if the bridge flooded it (VN name, host-uniq) across the VN."""
    t = lab.mac("T")
    uniq = os.urandom(8)
    discover = Message(MsgType.DISCOVER, 0, 0, (Tlv(TlvType.VN_NAME, "n1"), Tlv(TlvType.HOST_UNIQ, uniq)))
    script = ("import sys, time; from tenet.ethernet import packet_socket; s = packet_socket(); s.bind(('eth0', 0)); "
              "[(s.send(bytes.fromhex(sys.argv[1])), time.sleep(0.1)) for _ in range(5)]")
    with Capture(lab, "S2", "eth0", "ether proto 0x88b5") as far, Capture(lab, "T", "eth0", "ether proto 0x88b5") as near:
        r = lab.exec("T", sys.executable, "-c", script, frame("ff:ff:ff:ff:ff:ff", t, discover).hex())
        assert r.returncode == 0, r.stderr
    offers = near.fields(f"eth.type == 0x88b5 && eth.dst == {t} && frame contains {uniq.hex(':')}", "eth.src")
    assert len(offers) >= 5  # h1 answered each (h4, the access switch on T's LAN, may too)
    assert far.fields("eth.type == 0x88b5", "eth.src") == []


def test_terminate_removes_everything_including_the_last_vn_instance(lab):
    assert "tnb6002" in links(lab, "h1")  # V is the only n2 endpoint on h1
    lab.stop_process("tes", "V.eth0")  # SIGTERM: tenet-tes sends TERMINATE
    wait(lambda: lab.mac("V") not in lab.endpoints(), 5, "V's endpoint removal")
    gone = time.monotonic()
    time.sleep(0.5)
    assert "tnb6002" in links(lab, "h1")  # held (controller/hold.py): a TES back within 2 s finds it
    wait(lambda: "tnb6002" not in links(lab, "h1") and "tnx6002" not in links(lab, "h1"), 8, "n2 instance removal on h1")
    assert time.monotonic() - gone >= HOLD - 0.2  # less the endpoint wait's polling
    tables = published.read(open_store(lab.store_url), "h1")
    assert tables.vn("n2") is None and tables.vn("n1") is not None


def test_keepalive_expiry_detaches_a_silent_tes(lab):
    t = lab.mac("T")
    lab.stop_process("tes", "T.eth0", signal.SIGKILL)  # dies without a word
    t0 = time.monotonic()
    wait(lambda: t not in lab.endpoints(), 8, "keepalive expiry")
    assert time.monotonic() - t0 >= 1.5  # not before hellos were actually missed
    wait(lambda: lab.exec("S2", "ping", "-c1", "-W1", "10.60.0.10").returncode != 0, 5, "T unreachable")
    gate = lab.exec("h1", "nft", "list", "chain", "netdev", "tenet", "gate").stdout
    assert port_name("T", 0) in gate  # T's port is gated again


def test_wireshark_dissector_decodes_a_lab_capture(lab):
    """U retries every 5 s; capture one whole (rejected) exchange on its port and decode it."""
    lua = Path(__file__).parents[2] / "contrib" / "wireshark" / "tenet.lua"
    with Capture(lab, "U", "eth0", "ether proto 0x88b5 or ether proto 0x88b6") as cap:
        time.sleep(6.5)  # longer than the TES's 5 s back-off: at least one full attempt
    r = subprocess.run(["tshark", "-X", f"lua_script:{lua}", "-r", str(cap.file), "-T", "fields",
                        "-e", "tenet.type", "-e", "tenet.vn_name", "-e", "tenet.auth_status"],
                       capture_output=True, text=True, timeout=60)
    types = [line.split("\t")[0] for line in r.stdout.splitlines()]
    assert "1" in types and "2" in types and "4" in types  # DISCOVER, OFFER, CONFIRM
    assert any(line.split("\t")[0] == "6" and line.split("\t")[2] == "1" for line in r.stdout.splitlines())  # failure


# -- the L3 transport: physical servers on the underlay attach over UDP ---------------------
LUA = Path(__file__).parents[2] / "contrib" / "wireshark" / "tenet.lua"


def server(lab, name):
    return next(s for s in lab.intent.servers if s.name == name)


def test_server_behind_a_router_attaches_over_udp(lab):
    s1 = server(lab, "s1")
    wait(lambda: s1.nic.mac in lab.endpoints(), 15, "s1's first attachment")
    old = lab.endpoints()[s1.nic.mac]["session"]
    with Capture(lab, "s1", "up0", "udp") as cap:
        lab.start_tes("s1")  # a fresh TES: TERMINATE, then the whole exchange again, across the router
        wait(lambda: lab.endpoints().get(s1.nic.mac, {}).get("session") not in (None, old), 15, "s1's new session")
        lab.wait_attached("s1", timeout=10)
        wait(lambda: lab.exec("s1", "ping", "-c1", "-W1", "10.60.0.1").returncode == 0, 10, "s1 reaching S")  # via h1
        assert lab.exec("s1", "ping", "-c2", "-i0.2", "-W2", "10.60.0.2").returncode == 0  # S2, on h2
    ep = lab.endpoints()[s1.nic.mac]
    assert ep["host"] == "h1" and ep["channel"] == f"udp:{s1.address.ip}:6768"
    vni = ep["tunnel"]["vni"]
    assert ep["tunnel"]["remote"] == str(s1.address.ip) and ep["port"] == f"tna{vni:06x}" and vni != 6001
    msgs = cap.fields("tenet", "tenet.type", "tenet.tunnel.vni", "udp.dstport", args=("-X", f"lua_script:{LUA}"))
    types = {m[0] for m in msgs}
    assert {"1", "2", "3", "4", "5", "6"} <= types  # DISCOVER … AUTH_RESULT, all in UDP
    assert [m[1] for m in msgs if m[0] == "6"][-1] == str(vni)  # AUTH_RESULT names the access tunnel
    assert {m[2] for m in msgs if m[0] == "1"} == {"6767"}
    # (on this segment s1 may also see VNI 6001 frames h1 sends h3, flooded by the pn2 bridge)
    data = cap.fields("vxlan && icmp.type == 8 && udp.port == 4790", "vxlan.vni", "ip.src", args=("-d", "udp.port==4790,vxlan"))
    assert data and {(d[0], d[1].split(",")[-1]) for d in data} == {(str(vni), "10.60.0.30")}


def test_server_on_a_shared_segment_discovers_by_broadcast(lab):
    s2 = server(lab, "s2")
    wait(lambda: s2.nic.mac in lab.endpoints(), 15, "s2's attachment")
    old = lab.endpoints()[s2.nic.mac]["session"]
    lab.start_tes("s2")  # a fresh selection (an earlier test may have made s2 move)
    wait(lambda: lab.endpoints().get(s2.nic.mac, {}).get("session") not in (None, old), 15, "s2's new session")
    assert lab.endpoints()[s2.nic.mac]["host"] == "h4"  # the access switch, among h1, h2, h4 on pn1
    selected = [line for line in Path(lab.process("tes", "s2").log).read_text().splitlines() if " selected " in line]
    assert selected[-1].endswith("(access_switch, capability 10) among 3 offers")
    # the NVE reports the session as it answers; the TES builds tnt0 when that answer arrives
    wait(lambda: lab.exec("s2", "ping", "-c1", "-W1", "10.60.0.1").returncode == 0, 10, "s2 reaching S")


def test_server_terminate_removes_its_access_tunnel(lab):
    s2 = server(lab, "s2")
    wait(lambda: s2.nic.mac in lab.endpoints(), 15, "s2's attachment")
    tunnel, nve = lab.endpoints()[s2.nic.mac]["port"], lab.endpoints()[s2.nic.mac]["host"]
    assert tunnel in links(lab, nve) and "tnt0" in links(lab, "s2")
    lab.stop_process("tes", "s2")
    wait(lambda: s2.nic.mac not in lab.endpoints(), 5, "s2's endpoint removal")
    wait(lambda: tunnel not in links(lab, nve), 5, f"the access tunnel's removal on {nve}")
    assert "tnt0" not in links(lab, "s2")
    assert lab.exec("S", "ping", "-c1", "-W1", "10.60.0.31").returncode != 0


# -- the NVE's RADIUS client against the real FreeRADIUS -------------------------------------
RADIUS_PROBE = """
import select, sys, time
from tenet.aaa.failover import RadiusPolicy
from tenet.aaa.radius import RadiusClient, RadiusMux
from tenet.wire import eap
ip, port, secret = sys.argv[1], int(sys.argv[2]), sys.argv[3]
mux = RadiusMux(RadiusClient(ip, secret, port), RadiusPolicy(timeout=0.3, retries=1))
mux.submit(time.monotonic(), "t", "alice", eap.encode(eap.identity_response(1, "alice")), None)
deadline = time.monotonic() + 5
while time.monotonic() < deadline:
    select.select([mux], [], [], 0.05)
    now = time.monotonic()
    for tag, r in mux.on_readable(now) + mux.tick(now):
        print(type(r).__name__, getattr(r, "code", r))
        sys.exit(0)
print("nothing")
"""


@pytest.mark.parametrize("port, secret, expect", [
    (1812, None, "RadiusReply challenge"),  # EAP-MD5 challenge for alice
    (1812, "not-the-secret", "RadiusTimeout no valid reply from RADIUS server {ip}:1812 (down, unreachable, or a wrong shared secret"),
    (1999, None, "RadiusTimeout no valid reply from RADIUS server {ip}:1999"),  # nobody listens
])
def test_radius_client_names_the_cause(lab, port, secret, expect):
    ip = lab.plan.aaa[0].ip
    secret = secret or (lab.record.dir / "radius.secret").read_text().strip()
    r = lab.exec("h1", sys.executable, "-c", RADIUS_PROBE, ip, str(port), secret)
    assert r.stdout.startswith(expect.format(ip=ip)), r.stdout + r.stderr


def test_dead_radius_server_fails_admission_with_the_cause(lab):
    """Last in this module: it stops the lab's FreeRADIUS. A TES that starts now is refused
    with a reason naming the server, and nothing of it is attached."""
    lab.stop_process("radius", "aaa")
    x = lab.mac("X")
    lab.start_tes("X")
    log = Path(lab.process("tes", "X.eth0").log)
    wait(lambda: "RADIUS unavailable: no valid reply from RADIUS server" in log.read_text(), 15, "the refusal")
    assert x not in lab.endpoints()
    assert lab.exec("X", "ping", "-c1", "-W1", "10.60.0.1").returncode != 0
