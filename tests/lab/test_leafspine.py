"""A leaf-spine fabric (four leaves, two spines, OSPF with equal-cost paths): every VN answers
across racks, and when a spine fails traffic between leaves continues through the other while
tenet's tables stay as they were (the underlay heals itself; the overlay never notices)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tenet.lab.demo import check, read_tables
from tenet.lab.lab import Lab

HERE = Path(__file__).parent
INTERVAL = 0.02  # s between echoes of the continuous ping
FAILOVER = 5.0  # s: the bound for traffic to find the other spine


@pytest.fixture(scope="module")
def clos():
    with Lab.load(HERE / "leafspine.yaml") as lab:
        yield lab


def test_every_vn_answers_across_the_racks(clos):
    assert check(clos).failures == []


def test_equal_paths_through_both_spines(clos):
    routes = clos.exec("leaf1", "ip", "-4", "route", "show", "198.18.54.0/24").stdout
    assert routes.count("nexthop via") == 2, routes  # rack4 from leaf1: one path per spine


@pytest.mark.parametrize("spine", ["spine1", "spine2"])
def test_a_failed_spine_is_routed_around_and_the_tables_stay(clos, spine):
    """Each spine fails in turn under a continuous ping between the farthest racks (whichever
    one ECMP put the echoes or their replies on), and comes back before the next. It fails
    silently, as a spine that loses power: its routing daemons are frozen first, so it cannot
    announce its links going down (it would, one by one, and the leaves would reroute within
    milliseconds); the leaves notice only when its hellos stop."""
    clos.wait_routed(30)  # both paths again after the previous failure
    before = {h: t.generation for h, t in read_tables(clos.store_url, clos.intent).items()}
    assert clos.exec("r1", "ping", "-c3", "-i0.2", "-W1", "10.70.0.4").returncode == 0
    ports = [d for d in clos.exec(spine, "ls", "/sys/class/net").stdout.split() if d.startswith("u")]
    pinger = clos.popen("r1", "ping", "-i", str(INTERVAL), "-W1", "-w", "8", "10.70.0.4",
                        stdout=subprocess.PIPE, text=True)
    daemons = [clos.process(d, spine).pid for d in ("zebra", "ospfd", "pimd")]
    try:
        time.sleep(1.5)
        for pid in daemons:
            os.kill(pid, signal.SIGSTOP)
        for dev in ports:
            clos.exec(spine, "ip", "link", "set", dev, "down", check=True)
        out, _ = pinger.communicate(timeout=20)
    finally:
        if pinger.poll() is None:
            pinger.kill()
        for dev in ports:
            clos.exec(spine, "ip", "link", "set", dev, "up")
        for pid in daemons:
            os.kill(pid, signal.SIGCONT)
    sent, received = (int(x) for x in re.search(r"(\d+) packets transmitted, (\d+) received", out).groups())
    outage = (sent - received) * INTERVAL
    print(f"\n{spine} failed: {sent - received} of {sent} echoes lost, {outage:.2f} s without traffic")
    assert outage < FAILOVER  # traffic continued through the other spine
    after = {h: t.generation for h, t in read_tables(clos.store_url, clos.intent).items()}
    assert after == before  # tenet's tables did not change
