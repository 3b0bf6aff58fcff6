"""Prometheus metrics on a running lab: every controller, agent and 802.1X proxy serves them
on its namespace's loopback, `tenet lab status --json` names where, and the values move with
real events — attaches, a wrong password, a revocation, a TES gone silent, `tenet apply`."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tenet.lab.lab import Lab, down
from tenet.lab.metrics import scrape
from tenet.lab.record import Record

from waiting import wait

TOPOLOGY = Path(__file__).with_name("metrics.yaml")
NAME = "tmetric"


@pytest.fixture(scope="module")
def lab():
    lab = Lab.load(TOPOLOGY)
    lab.up()
    try:
        lab.wait_attached("T", timeout=15)
        wait(lambda: lab.mac("V") in lab.endpoints(), 15, "V authorized")
        yield lab
    finally:
        down(Record.load(NAME))  # as `tenet apply` left it: with the VM it created


def tenet(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tenet.cli.main", *argv], capture_output=True, text=True, timeout=120)


def samples(lab, role: str, node: str) -> dict[tuple, float]:
    """(sample name, sorted labels) -> value, scraped from the process's own /metrics."""
    p = lab.process(role, node)
    text = scrape(p.metrics, p.netns)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def get(lab, role: str, node: str, name: str, **labels) -> float:
    return samples(lab, role, node).get((name, tuple(sorted(labels.items()))), 0.0)


def total(lab, role: str, node: str, name: str, **labels) -> float:
    """The sum over the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples(lab, role, node).items() if n == name and want <= set(ls))


def test_lab_status_lists_every_metrics_url_and_each_serves(lab):
    r = tenet("lab", "status", NAME, "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)["processes"]
    served = {(row["role"], row["node"]): row["metrics"] for row in rows if "metrics" in row}
    assert {("controller", "controller1"), ("agent", "h1"), ("agent", "h2"), ("agent", "tor1"), ("proxy", "hp")} <= set(served)
    for (role, node), where in served.items():
        assert where["url"].startswith("http://127.0.0.1:") and where["url"].endswith("/metrics")
        assert where["netns"] == ("" if role == "controller" else lab.netns(node))  # SQLite lab: the controller in root
        text = scrape(where["url"], where["netns"])
        assert f"tenet_{role}_" in text, (role, node)
    # nothing listens beyond loopback: the lab reaches no interface of the root namespace
    assert "127.0.0.1:9108" in lab.exec("h1", "ss", "-ltn").stdout
    assert "0.0.0.0:9108" not in lab.exec("h1", "ss", "-ltn").stdout


def test_an_attach_counts_a_success_and_a_wrong_password_a_failure(lab):
    """T and U are on different admission shards of h1: the agent's one URL sums both."""
    # T attached, U was refused, while the lab came up
    wait(lambda: total(lab, "agent", "h1", "tenet_nve_admissions_total", result="failure") >= 1, 10, "U refused")
    success = total(lab, "agent", "h1", "tenet_nve_admissions_total", result="success", method="md5")
    failure = total(lab, "agent", "h1", "tenet_nve_admissions_total", result="failure")
    assert success >= 1
    rtt = get(lab, "agent", "h1", "tenet_nve_radius_round_trip_seconds_count")
    assert rtt >= 2
    lab.start_tes("U")  # a fresh attempt with the wrong password, now
    wait(lambda: total(lab, "agent", "h1", "tenet_nve_admissions_total", result="failure") > failure, 10, "a failure")
    assert total(lab, "agent", "h1", "tenet_nve_admissions_total", result="success") == success  # U never succeeds
    old = lab.endpoints()[lab.mac("T")]["session"]
    lab.start_tes("T")  # T attaches afresh: one more success
    wait(lambda: lab.endpoints().get(lab.mac("T"), {}).get("session") not in (None, old), 15, "T's new session")
    wait(lambda: total(lab, "agent", "h1", "tenet_nve_admissions_total", result="success", method="md5") > success,
         5, "a success")
    assert get(lab, "agent", "h1", "tenet_nve_radius_round_trip_seconds_count") > rtt
    wait(lambda: get(lab, "agent", "h1", "tenet_nve_sessions", kind="nvo3") == 1, 5, "one session: T's")


def test_a_revocation_and_a_silent_tes_end_sessions(lab):
    t = lab.mac("T")
    wait(lambda: get(lab, "agent", "h1", "tenet_nve_sessions", kind="nvo3") == 1, 5, "T attached")
    revoked = get(lab, "agent", "h1", "tenet_nve_revocations_total", result="ended")
    admin = get(lab, "agent", "h1", "tenet_nve_detaches_total", reason="admin")
    old = lab.endpoints()[t]["session"]
    r = tenet("detach", t, "--lab", NAME, "--why", "metrics test")
    assert r.returncode == 0, r.stderr
    wait(lambda: get(lab, "agent", "h1", "tenet_nve_revocations_total", result="ended") == revoked + 1, 5, "revoked")
    assert get(lab, "agent", "h1", "tenet_nve_detaches_total", reason="admin") == admin + 1
    wait(lambda: lab.endpoints().get(t, {}).get("session") not in (None, old), 15, "T back")  # it rediscovers
    missed = get(lab, "agent", "h1", "tenet_nve_hellos_missed_total")
    lab.stop_process("tes", "T.eth0", signal.SIGKILL)  # no TERMINATE: its hellos just stop
    wait(lambda: get(lab, "agent", "h1", "tenet_nve_hellos_missed_total") == missed + 1, 8, "three hellos missed")
    wait(lambda: get(lab, "agent", "h1", "tenet_nve_sessions", kind="nvo3") == 0, 3, "no session left")
    lab.start_tes("T")
    lab.wait_attached("T", timeout=15)


def test_8021x_on_the_switch_and_the_proxy(lab):
    wait(lambda: total(lab, "agent", "tor1", "tenet_dot1x_authorizations_total", result="failure") >= 1, 10, "M refused")
    ok = total(lab, "agent", "tor1", "tenet_dot1x_authorizations_total", result="success", method="md5")
    assert ok >= 1  # V
    wait(lambda: get(lab, "agent", "tor1", "tenet_nve_sessions", kind="dot1x") == 1, 3, "V's authorization counted")
    assert get(lab, "proxy", "hp", "tenet_proxy_authorizations_total", result="success") >= 1
    assert get(lab, "proxy", "hp", "tenet_proxy_authorizations_total", result="failure") >= 1
    assert get(lab, "proxy", "hp", "tenet_proxy_eapol_starts_total") >= 2
    # RFC 5176 from the RADIUS node: a Disconnect ends V's authorization (ACK), another finds none (NAK)
    acks = get(lab, "agent", "tor1", "tenet_dot1x_dynauth_requests_total", kind="disconnect", result="ack")
    naks = get(lab, "agent", "tor1", "tenet_dot1x_dynauth_requests_total", kind="disconnect", result="nak")
    assert dynauth(lab, "disconnect", lab.mac("V")) == 41
    assert dynauth(lab, "disconnect", "02:00:00:00:99:99") == 42
    assert get(lab, "agent", "tor1", "tenet_dot1x_dynauth_requests_total", kind="disconnect", result="ack") == acks + 1
    assert get(lab, "agent", "tor1", "tenet_dot1x_dynauth_requests_total", kind="disconnect", result="nak") == naks + 1
    wait(lambda: get(lab, "agent", "tor1", "tenet_nve_sessions", kind="dot1x") == 0, 3, "V's authorization gone")
    lab.start_proxies()  # hp vouches again: V is back
    wait(lambda: total(lab, "agent", "tor1", "tenet_dot1x_authorizations_total", result="success", method="md5") > ok,
         15, "V re-authorized")


def dynauth(lab, kind, mac, *extra):
    argv = [sys.executable, "-m", "tenet.aaa.dynauth_client", "--nas", str(lab.intent.fabric.host("tor1").ip),
            "--secret-file", str(lab.record.dir / "radius.secret"), "--mac", mac, kind]
    r = lab.exec("aaa", *argv)
    assert r.returncode in (0, 1), r.stderr
    return int(r.stdout)


def test_frames_from_a_port_not_admitted_are_counted_at_the_gate(lab):
    """U was refused: what it sends dies at h1's gate, and the agent's counter says so."""
    lab.wait_converged(10)  # a table swap restarts the kernel's counters: none while we count
    before = get(lab, "agent", "h1", "tenet_agent_dropped_frames_total", chain="gate")
    assert lab.exec("U", "ping", "-c3", "-i0.2", "-W1", "10.121.0.1").returncode != 0
    assert get(lab, "agent", "h1", "tenet_agent_dropped_frames_total", chain="gate") > before


def test_apply_grows_the_compute_histogram_and_the_agents_reconcile(lab, tmp_path):
    """`tenet apply` adds a VM on h2 in n1: the controller recomputes and publishes h1 a new
    generation; h1's agent reconciles it (a new forwarding entry: ops applied), lag back to 0."""
    computed = get(lab, "controller", "controller1", "tenet_controller_compute_duration_seconds_count")
    published = get(lab, "controller", "controller1", "tenet_controller_tables_published_total")
    generation = get(lab, "controller", "controller1", "tenet_controller_host_generation", host="h1")
    reconciled = get(lab, "agent", "h1", "tenet_agent_reconcile_duration_seconds_count")
    ops = total(lab, "agent", "h1", "tenet_agent_ops_applied_total")
    doc = yaml.safe_load(tenet("get", "--lab", NAME).stdout)
    doc["vms"]["S9"] = {"host": "h2", "network": "n1", "ip": "10.121.0.9/24"}
    path = tmp_path / "tenancy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = tenet("apply", "--lab", NAME, str(path))
    assert r.returncode == 0, r.stderr
    wait(lambda: get(lab, "controller", "controller1", "tenet_controller_host_generation", host="h1") > generation,
         10, "h1's new generation")
    assert get(lab, "controller", "controller1", "tenet_controller_compute_duration_seconds_count") > computed
    assert get(lab, "controller", "controller1", "tenet_controller_tables_published_total") > published
    want = get(lab, "controller", "controller1", "tenet_controller_host_generation", host="h1")
    wait(lambda: get(lab, "agent", "h1", "tenet_agent_applied_generation") >= want, 10, "h1 applied it")
    assert get(lab, "agent", "h1", "tenet_agent_generation_lag") == 0
    assert get(lab, "agent", "h1", "tenet_agent_reconcile_duration_seconds_count") > reconciled
    assert total(lab, "agent", "h1", "tenet_agent_ops_applied_total") > ops
    assert total(lab, "agent", "h1", "tenet_agent_kernel_errors_total") == 0
    assert get(lab, "controller", "controller1", "tenet_controller_leader") == 1
