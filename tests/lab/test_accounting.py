"""RADIUS accounting end to end: NVEs account their sessions to the lab's real FreeRADIUS, which
writes every record to its detail file; the octets are checked against iperf3's count.

What is counted is the Ethernet frame (agent/session_counters.py): iperf3 reports UDP payload,
so a datagram of L octets is L + 8 (UDP) + 20 (IPv4) + 14 (Ethernet) on the port. The counts
compared are the difference between two Interim-Updates around the run (or a Stop)."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenet.lab.metrics import scrape
from tenet.model.tenancy import port_name, switch_port_name

from waiting import wait
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).with_name("accounting.yaml")
S_IP = "10.63.0.1"
LENGTH = 1200  # iperf3's UDP payload
HEADERS = 8 + 20 + 14  # UDP, IPv4, Ethernet: what a datagram adds on the wire, FCS not counted
RATE = "20M"


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        lab.wait_attached("T", timeout=15)
        wait(lambda: {lab.mac("T"), lab.mac("V"), server(lab).nic.mac} <= set(lab.endpoints()), 20,
             "T, V and s1 admitted")
        lab.wait_converged(20)
        yield lab


def server(lab, name="s1"):
    return next(s for s in lab.intent.servers if s.name == name)


def detail(lab) -> list[dict[str, str]]:
    """FreeRADIUS's detail file, one dict per accounting record (values unquoted)."""
    path = lab.radius_dir("aaa") / "detail"
    if not path.exists():
        return []
    records = []
    for block in path.read_text().split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        rec = {}
        for line in lines[1:]:  # the first line is the time it was written
            name, _, value = line.strip().partition(" = ")
            rec[name] = value.strip('"')
        records.append(rec)
    return records


def calling(mac: str) -> str:
    return mac.replace(":", "-").upper()


def of(lab, mac: str, status: str | None = None) -> list[dict[str, str]]:
    return [r for r in detail(lab) if r.get("Calling-Station-Id") == calling(mac)
            and (status is None or r.get("Acct-Status-Type") == status)]


def octets(r: dict, direction: str) -> int:
    return int(r.get(f"Acct-{direction}-Gigawords", 0)) * 2**32 + int(r[f"Acct-{direction}-Octets"])


def test_each_session_starts_with_its_identity(lab):
    t, v, s1 = lab.mac("T"), lab.mac("V"), server(lab).nic.mac
    eps = lab.endpoints()
    wait(lambda: of(lab, t, "Start") and of(lab, v, "Start") and of(lab, s1, "Start"), 10, "three Starts")
    start = of(lab, t, "Start")[-1]
    assert start["Acct-Session-Id"].startswith(f"{eps[t]['session']:08x}") and len(start["Acct-Session-Id"]) == 16
    assert (start["User-Name"], start["NAS-Identifier"], start["NAS-Port-Type"]) == ("alice", "h1", "Ethernet")
    assert start["NAS-Port-Id"] == port_name("T", 0) and start["Framed-IP-Address"] == "10.63.0.10"
    assert start["NAS-IP-Address"] == str(lab.intent.fabric.host("h1").ip)
    dot1x = of(lab, v, "Start")[-1]
    assert (dot1x["User-Name"], dot1x["NAS-Identifier"], dot1x["NAS-Port-Id"]) == ("vm-v", "tor1", switch_port_name("host6"))
    tunnel = of(lab, s1, "Start")[-1]
    assert (tunnel["User-Name"], tunnel["NAS-Port-Type"]) == ("carol", "Virtual")
    assert tunnel["NAS-Port-Id"] == f"udp:{server(lab).address.ip}:6768"


def test_interim_updates_come_at_radius_interval(lab):
    """carol's Access-Accept says Acct-Interim-Interval 2: the agents' floor is 1 s here."""
    t = lab.mac("T")
    sid = of(lab, t, "Start")[-1]["Acct-Session-Id"]
    wait(lambda: len([r for r in of(lab, t, "Interim-Update") if r["Acct-Session-Id"] == sid]) >= 2, 8, "interims")
    a, b = [r for r in of(lab, t, "Interim-Update") if r["Acct-Session-Id"] == sid][-2:]
    assert 1 <= int(b["Acct-Session-Time"]) - int(a["Acct-Session-Time"]) <= 3
    assert octets(b, "Input") >= octets(a, "Input")


def iperf(lab, client: str, reverse: bool) -> dict:
    """A bounded UDP run at RATE between `client` and S; iperf3's JSON `end`."""
    srv = lab.popen("S", "iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: "LISTEN" in lab.exec("S", "ss", "-ltn", "sport = :5201").stdout, 5, "iperf3 server")
        argv = ["iperf3", "-c", S_IP, "-u", "-b", RATE, "-l", str(LENGTH), "-t", "3", "-J"] + (["-R"] if reverse else [])
        r = lab.exec(client, *argv, timeout=30)
        assert r.returncode == 0, r.stdout[-500:] + r.stderr
        return json.loads(r.stdout)["end"]
    finally:
        srv.terminate()
        srv.wait(5)


def interim_after(lab, mac: str, sid: str, after: float) -> dict:
    """The first Interim-Update of session `sid` written after `after` (UNIX time)."""
    def found():
        rs = [r for r in of(lab, mac, "Interim-Update") if r["Acct-Session-Id"] == sid and int(r["Timestamp"]) > after]
        return rs[0] if rs else None
    wait(found, 8, "an interim after the run")
    return found()


@pytest.mark.parametrize("who", ["T", "V", "s1"])  # a VM port, a switch port (802.1X), an access tunnel
def test_octets_match_iperf3_both_ways(lab, who):
    mac = server(lab).nic.mac if who == "s1" else lab.mac(who)
    sid = of(lab, mac, "Start")[-1]["Acct-Session-Id"]
    wait(lambda: lab.exec(who, "ping", "-c1", "-W1", S_IP).returncode == 0, 10, f"{who} reaching S")
    before = interim_after(lab, mac, sid, time.time())
    up = iperf(lab, who, reverse=False)["sum_sent"]  # what the TES sent: it entered the port
    down = iperf(lab, who, reverse=True)["sum_received"]  # what the TES got: it left the port
    after = interim_after(lab, mac, sid, time.time() + 1)
    for direction, run in (("Input", up), ("Output", down)):
        frames = run["bytes"] // LENGTH
        wire = run["bytes"] + HEADERS * frames
        counted = octets(after, direction) - octets(before, direction)
        packets = int(after[f"Acct-{direction}-Packets"]) - int(before[f"Acct-{direction}-Packets"])
        print(f"{who} {direction}: {counted} octets counted, iperf3 {wire} ({(counted - wire) / wire:+.2%}); "
              f"{packets} packets, {frames} datagrams")
        assert abs(counted - wire) <= 0.05 * wire, f"{who} {direction}: {counted} octets counted, iperf3 {wire}"
        assert abs(packets - frames) <= 0.05 * frames, f"{who} {direction}: {packets} packets, iperf3 {frames}"


def test_an_agent_restart_resumes_each_session_with_its_counts(lab):
    """The agent and its admission shards restart: the counters' table stays in the kernel, and
    each adopted session goes on under its Acct-Session-Id — no Stop, no second Start, counts
    not reset."""
    t, v = lab.mac("T"), server(lab).nic.mac
    sids = {m: of(lab, m, "Start")[-1]["Acct-Session-Id"] for m in (t, v)}
    starts = {m: len(of(lab, m, "Start")) for m in (t, v)}
    before = {m: interim_after(lab, m, sids[m], time.time()) for m in (t, v)}
    lab.restart_agent("h1")
    lab.wait_converged(20)
    for m in (t, v):
        after = interim_after(lab, m, sids[m], time.time() + 1)
        assert len(of(lab, m, "Start")) == starts[m] and not [s for s in of(lab, m, "Stop") if s["Acct-Session-Id"] == sids[m]]
        assert octets(after, "Input") >= octets(before[m], "Input") and octets(after, "Output") >= octets(before[m], "Output")
        assert int(after["Acct-Session-Time"]) > int(before[m]["Acct-Session-Time"])


def test_revoke_stops_with_admin_reset_and_the_new_session_starts(lab):
    t = lab.mac("T")
    old = of(lab, t, "Start")[-1]["Acct-Session-Id"]
    r = subprocess.run([sys.executable, "-m", "tenet.cli.main", "detach", t, "--lab", lab.name, "--why", "audit"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wait(lambda: [s for s in of(lab, t, "Stop") if s["Acct-Session-Id"] == old], 10, "T's Stop")
    stop = next(s for s in of(lab, t, "Stop") if s["Acct-Session-Id"] == old)
    assert stop["Acct-Terminate-Cause"] == "Admin-Reset"
    last = [r for r in of(lab, t, "Interim-Update") if r["Acct-Session-Id"] == old][-1]
    assert octets(stop, "Input") >= octets(last, "Input") and int(stop["Acct-Session-Time"]) >= int(last["Acct-Session-Time"])
    wait(lambda: of(lab, t, "Start")[-1]["Acct-Session-Id"] != old, 15, "T's new session")  # the TES came back


def test_terminate_stops_with_user_request_and_the_counters_go(lab):
    t = lab.mac("T")
    wait(lambda: t in lab.endpoints(), 15, "T attached")
    sid = of(lab, t, "Start")[-1]["Acct-Session-Id"]
    assert f"c{sid}_i" in lab.exec("h1", "nft", "list", "counters").stdout
    last = interim_after(lab, t, sid, 0)
    lab.stop_process("tes", "T.eth0")  # SIGTERM: tenet-tes sends TERMINATE
    wait(lambda: [s for s in of(lab, t, "Stop") if s["Acct-Session-Id"] == sid], 10, "T's Stop")
    stop = next(s for s in of(lab, t, "Stop") if s["Acct-Session-Id"] == sid)
    assert stop["Acct-Terminate-Cause"] == "User-Request"
    assert int(stop["Acct-Session-Time"]) >= int(last["Acct-Session-Time"]) >= 1
    wait(lambda: f"c{sid}_i" not in lab.exec("h1", "nft", "list", "counters").stdout, 5, "its counters removed")


def test_keepalive_expiry_stops_with_lost_carrier(lab):
    s1 = server(lab).nic.mac
    sid = of(lab, s1, "Start")[-1]["Acct-Session-Id"]
    lab.stop_process("tes", "s1", signal.SIGKILL)  # dies without a word: its hellos stop
    wait(lambda: [s for s in of(lab, s1, "Stop") if s["Acct-Session-Id"] == sid], 10, "s1's Stop")
    stop = next(s for s in of(lab, s1, "Stop") if s["Acct-Session-Id"] == sid)
    assert stop["Acct-Terminate-Cause"] == "Lost-Carrier"


def test_logoff_stops_an_8021x_session_with_user_request(lab):
    v = lab.mac("V")
    sid = of(lab, v, "Start")[-1]["Acct-Session-Id"]
    lab.exec("host6", "ip", "link", "del", port_name("V", 0), check=True)  # the VM is removed: the host logs it off
    wait(lambda: [s for s in of(lab, v, "Stop") if s["Acct-Session-Id"] == sid], 10, "V's Stop")
    stop = next(s for s in of(lab, v, "Stop") if s["Acct-Session-Id"] == sid)
    assert stop["Acct-Terminate-Cause"] == "User-Request" and octets(stop, "Input") > 0
    assert re.fullmatch(r"[0-9a-f]{16}", sid)


def test_metrics_count_what_was_sent_and_acknowledged_and_no_pass_failed(lab):
    def requests() -> dict[tuple[str, str], float]:
        agent = lab.process("agent", "h1")
        return {(s.labels["status"], s.labels["result"]): s.value
                for f in text_string_to_metric_families(scrape(agent.metrics, agent.netns))
                for s in f.samples if s.name == "tenet_nve_accounting_requests_total"}

    # since h1's agent restarted: T's second session started; T twice and s1 stopped
    want = {("start", "acknowledged"): 1, ("interim_update", "acknowledged"): 4, ("stop", "acknowledged"): 3}
    wait(lambda: all(requests().get(k, 0) >= n for k, n in want.items()), 5, f"{want} in {requests()}")
    got = requests()
    assert got[("stop", "dropped")] == 0 and got[("stop", "sent")] == got[("stop", "acknowledged")], got
    for node in ("h1", "tor1"):
        log = Path(lab.process("agent", node).log).read_text()
        assert "accounting pass failed" not in log and "nft refused the accounting" not in log
