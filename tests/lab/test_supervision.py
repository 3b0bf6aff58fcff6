"""The lab supervises what it starts, as systemd's Restart=on-failure would: an agent killed
behind the supervisor's back is shown dead at once (no zombie taken for alive, no converged
generation taken for health), its heartbeat goes stale, it is restarted and traffic flows
again; one that keeps failing hits the start limit and is shown failed."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenet.lab.lab import Lab
from tenet.lab.record import Record
from tenet.lab.status import lab_processes

from waiting import wait

TOPOLOGY = Path(__file__).parent / "supervise.yaml"


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


def row(lab, role: str, node: str) -> dict:
    return next(r for r in lab_processes(Record.load(lab.name)) if (r["role"], r["node"]) == (role, node))


def human(lab) -> str:
    r = subprocess.run([sys.executable, "-m", "tenet.cli.main", "lab", "status", lab.name],
                       capture_output=True, text=True, check=True)
    return r.stdout


def ping(lab) -> bool:
    return lab.exec("x", "ping", "-c3", "-i0.2", "-W1", "10.171.0.2").returncode == 0


def test_a_killed_agent_is_shown_dead_at_once_then_restarted_and_traffic_flows_again(lab):
    assert ping(lab)
    before = row(lab, "agent", "a")
    assert before["alive"] and before["restarts"] == 0 and before["heartbeat"]["beat"] == "fresh"
    supervisor = lab.process("supervisor", lab.name)
    victim = lab.process("agent", "a")
    os.kill(supervisor.pid, signal.SIGSTOP)  # held while we look: the dead agent stays dead, unreaped
    try:
        killed = time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)  # behind the supervisor's back: a crash
        wait(lambda: not row(lab, "agent", "a")["alive"], 1.0, "agent a shown not alive within 1 s")
        assert time.monotonic() - killed < 1.0
        assert row(lab, "agent", "a")["liveness"] == "zombie"  # what `alive=yes` was taken from before
        wait(lambda: row(lab, "agent", "a")["heartbeat"]["beat"] != "fresh", 7, "agent a's heartbeat stale")
        dead = row(lab, "agent", "a")
        assert dead["state"] == "converged" and not dead["alive"]  # the store's last word, shown apart
        out = human(lab)
        line = next(line for line in out.splitlines() if " agent " in f" {line} " and str(victim.pid) in line)
        assert "no (zombie)" in line and ("stale" in line or "none" in line), out
    finally:
        os.kill(supervisor.pid, signal.SIGCONT)
    wait(lambda: (r := row(lab, "agent", "a"))["alive"] and r["restarts"] == 1, 5, "agent a restarted")
    again = row(lab, "agent", "a")
    assert again["pid"] != victim.pid and again["last_exit"] == "SIGKILL" and again["phase"] == "running"
    wait(lambda: row(lab, "agent", "a")["heartbeat"]["beat"] == "fresh", 10, "a fresh heartbeat")
    lab.wait_converged(20)
    assert ping(lab)


def test_an_agent_that_keeps_failing_hits_the_start_limit_and_is_shown_failed(lab):
    config = lab.record.dir / "agent-b.toml"
    good = config.read_text()
    config.write_text("not toml [\n")  # a broken config: every start exits 2
    try:
        os.kill(lab.process("agent", "b").pid, signal.SIGKILL)
        wait(lambda: row(lab, "agent", "b").get("phase") == "failed", 20, "agent b failed at its start limit")
        r = row(lab, "agent", "b")
        assert not r["alive"] and r["restarts"] == 4 and r["last_exit"] == "exit 2" and "start limit" in r["error"]
        time.sleep(0.5)
        assert row(lab, "agent", "b")["restarts"] == 4  # and left so
        assert "failed: start limit hit" in human(lab)
    finally:
        config.write_text(good)
    lab.restart_agent("b")  # the operator's reset-failed and start
    wait(lambda: (r := row(lab, "agent", "b"))["alive"] and r["restarts"] == 0 and r["phase"] == "running", 5, "b runs")
    lab.wait_converged(20)
    assert ping(lab)


def test_a_process_stopped_on_purpose_stays_stopped(lab):
    lab.stop_process("agent", "b", signal.SIGKILL)  # a fault the test inflicts: not healed under it
    time.sleep(1.0)
    r = row(lab, "agent", "b")
    assert not r["alive"] and r["phase"] == "stopped" and r["restarts"] == 0
    lab.restart_agent("b")
    lab.wait_converged(20)
    assert ping(lab)
