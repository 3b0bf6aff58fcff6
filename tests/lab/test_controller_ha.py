"""Controller high availability in a lab: two replicas, one leads; SIGKILLed while endpoints
churn and two VMs talk, the other takes over, publishes the churn, carries the generations on,
and no host whose tables did not change is reprogrammed; not one echo is lost."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tenet.controller.observed import reflects
from tenet.lab.churn import endpoint_churn
from tenet.lab.lab import Lab
from tenet.store import keys, published
from tenet.store.open import open_store
from tenet.store.records import Observed, TablesHead

from waiting import wait

TOPOLOGIES = {"sqlite": Path(__file__).with_name("ha.yaml"), "etcd": Path(__file__).with_name("ha_etcd.yaml")}
FAILOVER_BOUND = 10.0  # s: generous; bench/failover.py measures it
PINGS = 300  # one every 20 ms: 6 s, the kill 1.5 s in


@pytest.fixture(scope="module", params=sorted(TOPOLOGIES))
def lab(request):
    """The same replicas on each store: SQLite on one machine, a 3-member etcd cluster."""
    with Lab.load(TOPOLOGIES[request.param]) as lab:
        yield lab


def status(lab) -> dict:
    r = subprocess.run([sys.executable, "-m", "tenet.cli.main", "lab", "status", lab.name, "--json"],
                       capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def applied(lab, host: str) -> int:
    """How many times the host's agent has changed its kernel (it logs each pass that did)."""
    return Path(lab.process("agent", host).log).read_text().count(": applied ")


class Sampler:
    """Every host's table generation and the Observed record's leader, every 20 ms, in a thread."""

    def __init__(self, lab) -> None:
        self.store = open_store(lab.store_url)
        self.generations: list[dict[str, int]] = []
        self.observers: list[str] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.02):
            self.generations.append({keys.tables_host(kv.key): TablesHead.from_json(kv.value).generation
                                     for kv in self.store.range(keys.hosts_prefix()) if keys.tables_host(kv.key)})
            kv = self.store.get(keys.controller_observed())
            if kv and (not self.observers or self.observers[-1] != Observed.from_json(kv.value).leader):
                self.observers.append(Observed.from_json(kv.value).leader)

    def stop(self) -> None:
        self.done.set()
        self.thread.join()
        self.store.close()


def test_status_lists_every_process_and_the_one_leader(lab):
    s = status(lab)
    controllers = [p for p in s["processes"] if p["role"] == "controller"]
    assert [p["node"] for p in controllers] == ["controller1", "controller2"] and all(p["alive"] for p in controllers)
    assert [p["node"] for p in controllers if p["leads"]] == [lab.leader()]
    agents = {p["node"]: p for p in s["processes"] if p["role"] == "agent"}
    assert set(agents) == {"a", "b", "c"} and all(p["state"] == "converged" and p["pid"] > 0 for p in agents.values())


def test_sigkilled_leader_is_replaced_while_endpoints_churn_and_traffic_flows(lab):
    old = lab.leader()
    assert old is not None
    new = next(c for c in lab.controllers if c != old)
    v2 = next(vn for vn in lab.intent.vns if vn.name == "v2")
    store = open_store(lab.store_url)
    try:
        with endpoint_churn(lab.store_url, "c", v2.name, v2.vnid) as churn:
            wait(lambda: churn.writes >= 10, 5, "the churn under way")
            before = {h: applied(lab, h) for h in ("a", "b")}
            sampler = Sampler(lab)
            pinger = lab.popen("x", "ping", "-c", str(PINGS), "-i", "0.02", "-W1", "10.71.0.2", stdout=subprocess.PIPE, text=True)
            try:
                time.sleep(1.5)
                gens = {h: published.read(store, h).generation for h in ("a", "b", "c")}
                lab.stop_process("controller", old, signal.SIGKILL)
                t0 = time.monotonic()
                after_kill = store.revision()
                wait(lambda: churn.last > after_kill, 2, "a change after the kill")
                target = churn.last
                wait(lambda: reflects(store, target) and _observer(store) == new, FAILOVER_BOUND,
                     f"{new} publishing the churn after {old} was killed")
                took = time.monotonic() - t0
                out, _ = pinger.communicate(timeout=30)
            finally:
                if pinger.poll() is None:
                    pinger.kill()
                    pinger.wait()
            time.sleep(0.5)  # the new leader publishes a little more churn
            sampler.stop()
        lab.wait_converged(20)  # the churn's reports are gone again; c is back to its own VMs
    finally:
        store.close()
    assert lab.leader() == new
    s = status(lab)
    assert {p["node"]: (p["alive"], p["leads"]) for p in s["processes"] if p["role"] == "controller"} == \
        {old: (False, False), new: (True, True)}
    print(f"failover: {took:.2f} s; churn: {churn.writes} writes; generations of c: {gens['c']} -> {sampler.generations[-1]['c']}")
    assert took < FAILOVER_BOUND
    sent, received = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", out).groups())
    assert sent == received == PINGS, f"{sent - received} of {sent} echoes lost between x and y"
    for h in ("a", "b", "c"):  # no generation ever went backwards
        seq = [g[h] for g in sampler.generations]
        assert seq == sorted(seq), f"{h}: {seq}"
    assert all(g["a"] == gens["a"] and g["b"] == gens["b"] for g in sampler.generations), "a or b republished"
    assert sampler.generations[-1]["c"] > gens["c"], "the churn was not published after the failover"
    assert {h: applied(lab, h) for h in ("a", "b")} == before, "an agent whose tables did not change applied ops"
    assert sampler.observers[-1] == new and old not in sampler.observers[sampler.observers.index(new):]


def _observer(store) -> str | None:
    kv = store.get(keys.controller_observed())
    return Observed.from_json(kv.value).leader if kv else None


def test_a_killed_replica_restarts_as_a_follower(lab):
    """Lab.restart_controller: the replica the lab records as killed starts again by its new
    PID and follows the leader; nothing else changes."""
    leader = lab.leader()
    assert leader is not None
    for other in (c for c in lab.controllers if c != leader):
        lab.stop_process("controller", other, signal.SIGKILL)  # (a no-op for one the test above killed)
        log = Path(lab.process("controller", other).log)
        offset = log.stat().st_size
        old_pid = lab.process("controller", other).pid
        proc = lab.restart_controller(other)
        assert proc.pid != old_pid and lab.process("controller", other) == proc
        wait(lambda: f"{other}: following {leader}".encode() in log.read_bytes()[offset:], 15, f"{other} following {leader}")
    assert lab.leader() == leader
    assert all(p["alive"] for p in status(lab)["processes"] if p["role"] == "controller")
    lab.wait_converged(20)
