"""Faults of the control plane on etcd, with traffic flowing (issue 14, part 9): the store
losing its quorum, an agent restarting while the store is away. Each fault is judged by the
packets of pings that run through it, and by what the store shows once it is over."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tenet.lab import etcd
from tenet.lab.lab import Lab
from tenet.store import keys, published
from tenet.store.base import StoreError
from tenet.store.inventory import HostState
from tenet.store.open import open_store
from tenet.store.records import AgentStatus
from waiting import wait

TOPOLOGY = Path(__file__).with_name("faults.yaml")


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


class Pinger:
    """A ping running through a fault: every echo request must be answered."""

    def __init__(self, lab, node: str, ip: str) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", lab.netns(node), "ping", "-n", "-i", "0.1", "-W", "1", ip],
                                     stdout=subprocess.PIPE, text=True)

    def stop(self) -> tuple[int, int]:
        self.proc.send_signal(signal.SIGINT)
        summary = self.proc.communicate(timeout=5)[0].splitlines()
        line = next(l for l in summary if "packets transmitted" in l)
        sent, received = (int(w.split()[0]) for w in line.split(",")[:2])
        return sent, received


def stored(lab, key: str) -> bytes | None:
    store = open_store(lab.store_url)
    try:
        kv = store.get(key)
        return kv.value if kv else None
    finally:
        store.close()


def test_quorum_lost_nothing_changes_traffic_flows_and_an_agent_restarts_meanwhile(lab):
    """Two of three members stopped: a change is refused with a clear error and nothing of it
    is left; pings keep flowing; c's agent restarts without a store and keeps its kernel
    state. The members return: the cluster heals, c re-registers and resyncs without
    reprogramming, and a new change is published and carries traffic."""
    store = open_store(lab.store_url)
    try:
        c_tables = published.read(store, "c")
    finally:
        store.close()
    across, local = Pinger(lab, "x", "10.69.0.3"), Pinger(lab, "x", "10.69.0.2")
    time.sleep(1)
    gone = [m.name for m in lab.plan.etcd_nodes()[:2]]
    for m in gone:
        lab.stop_process("etcd", m, signal.SIGKILL)
    try:
        lab.restart_agent("c")  # it starts while the store has no quorum
        with pytest.raises(StoreError, match="etcd unreachable|no leader|timed out"):
            lab.vrouters.create("r9", "c", "red", [{"network": "v1", "ip": "10.69.0.9/24"}])
        assert "tn-tfault-r9" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        time.sleep(2)
        assert lab.exec("y", "ping", "-c3", "-i0.2", "-W1", "10.69.0.3").returncode == 0  # c's kernel kept its state
    finally:
        for m in gone:
            lab.restart_etcd(m)
    lab.wait_etcd(30)
    wait(lambda: lab.hosts()["c"].state is HostState.UP, 30, "c registered again once the store returned")
    lab.wait_converged(30)
    status = AgentStatus.from_json(stored(lab, keys.status("c")))
    assert status.generation == c_tables.generation  # resynced: the same tables, nothing to reprogram
    lab.vrouters.create("r9", "c", "red", [{"network": "v1", "ip": "10.69.0.9/24"}])
    lab.wait_converged(30)
    wait(lambda: lab.exec("x", "ping", "-c1", "-W1", "10.69.0.9").returncode == 0, 15, "x reaching the new VR on c")
    for p in (across, local):
        sent, received = p.stop()
        assert sent > 100 and received == sent, (sent, received)
    assert etcd.healthy(lab.etcd_status())
