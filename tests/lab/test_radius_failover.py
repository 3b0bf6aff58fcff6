"""RADIUS failover with two real FreeRADIUS servers: the primary stopped and started again
during a stream of NVO3 admissions. Every admission completes, none twice (one "Login OK"
per admission over both servers' logs), the ones during the outage on the secondary and the
ones after it back on the primary; a TES attached before the outage keeps its session and
forwards through it, re-authenticating every 6 s all along."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenet.lab.lab import RADIUS_PORT, Lab
from tenet.lab.metrics import scrape

from waiting import wait

TOPOLOGY = Path(__file__).with_name("radfail.yaml")
STREAM = [f"T{k}" for k in range(8)]
LOGIN_OK = re.compile(r"Login OK: \[([^\]]+)\]")


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        for vm in ["P", *STREAM]:
            lab.wait_attached(vm, timeout=30)
        yield lab


def sessions(lab) -> dict[str, int]:
    eps = lab.endpoints()
    return {vm: eps[lab.mac(vm)]["session"] for vm in ["P", *STREAM] if lab.mac(vm) in eps}


def readmit(lab, vms: list[str], before: dict[str, int], timeout: float) -> None:
    """Restart each TES (a new admission: its old session ends), then wait for every new one."""
    for vm in vms:
        lab.start_tes(only=vm)
        time.sleep(0.5)
    wait(lambda: all(sessions(lab).get(vm) not in (None, before[vm]) for vm in vms), timeout,
         f"new sessions of {', '.join(vms)}")


def logins(lab, server: str, since: int) -> list[str]:
    """Identities FreeRADIUS `server` logged "Login OK" for past byte offset `since`."""
    with open(lab.process("radius", server).log, "rb") as f:
        f.seek(since)
        return LOGIN_OK.findall(f.read().decode(errors="replace"))


def log_size(lab, server: str) -> int:
    return Path(lab.process("radius", server).log).stat().st_size


def radius_metric(lab, host: str, name: str, server: str) -> list[float]:
    """A per-server RADIUS metric from host's agent (its shards' merged)."""
    p = lab.process("agent", host)
    out = []
    for fam in text_string_to_metric_families(scrape(p.metrics, p.netns)):
        out += [s.value for s in fam.samples if s.name == name and s.labels.get("server") == server]
    return out


def test_primary_outage_during_a_stream_of_admissions(lab):
    ra, rb = (f"{a.ip}:{RADIUS_PORT}" for a in lab.plan.aaa)
    assert [a.name for a in lab.plan.aaa] == ["ra", "rb"]
    start = sessions(lab)
    pinned = start["P"]
    offsets = {s: log_size(lab, s) for s in ("ra", "rb")}

    readmit(lab, ["T0", "T1"], start, 20)  # the primary answers
    phase_a = {s: log_size(lab, s) for s in ("ra", "rb")}

    lab.stop_process("radius", "ra")
    down = {s: log_size(lab, s) for s in ("ra", "rb")}
    for vm in ["T2", "T3", "T4"]:
        lab.start_tes(only=vm)
        time.sleep(0.5)
    # an attached TES forwards through the outage (and keeps its session while re-authenticating)
    assert lab.exec("P", "ping", "-c5", "-i0.3", "-W2", "10.77.0.1").returncode == 0
    wait(lambda: all(sessions(lab).get(vm) not in (None, start[vm]) for vm in ["T2", "T3", "T4"]), 45,
         "T2..T4 admitted during the outage")
    assert lab.exec("P", "ping", "-c3", "-i0.3", "-W2", "10.77.0.1").returncode == 0
    assert any(n >= 1 for h in ("h1", "h2") for n in radius_metric(lab, h, "tenet_nve_radius_server_deaths_total", ra))

    lab.restart_radius("ra")
    # back in use once its Status-Server probe is answered (dead_time 10 s), in every shard
    wait(lambda: [v for h in ("h1", "h2") for v in radius_metric(lab, h, "tenet_nve_radius_server_up", ra)] == [1, 1],
         30, f"{ra} back in use", every=0.5)
    back = {s: log_size(lab, s) for s in ("ra", "rb")}
    readmit(lab, ["T5", "T6", "T7"], start, 20)

    # every admission completed once: one Login OK per TES over both servers
    seen = [u for s in ("ra", "rb") for u in logins(lab, s, offsets[s]) if u != "pinned"]
    assert sorted(seen) == [f"u{k}" for k in range(8)], seen
    # … on the primary before the outage, on the secondary during it, on the primary after
    assert sorted(u for u in logins(lab, "ra", offsets["ra"]) if u != "pinned" and u in ("u0", "u1")) == ["u0", "u1"]
    during = [u for u in logins(lab, "rb", down["rb"]) if u != "pinned"]
    assert sorted(during) == ["u2", "u3", "u4"] and not [u for u in logins(lab, "rb", phase_a["rb"])
                                                         if u in ("u0", "u1")]
    assert sorted(u for u in logins(lab, "ra", back["ra"]) if u != "pinned") == ["u5", "u6", "u7"]
    # P never left: one session from before the outage to now, re-authenticated on rb meanwhile
    assert sessions(lab)["P"] == pinned
    assert "pinned" in logins(lab, "rb", down["rb"])
    assert lab.exec("P", "ping", "-c3", "-i0.3", "-W2", "10.77.0.1").returncode == 0
    assert sum(n for h in ("h1", "h2") for n in radius_metric(lab, h, "tenet_nve_radius_failovers_total", ra)) >= 1
