"""Attach latency as bench/attach.py and bench/control_plane.py measure it, on any lab.

From DISCOVER sent to the first packet delivered to a VM of the same VN on another host: the
bench drives the TES itself (bench/attach_tes.py, in the TES's namespace), which notes the
time, attaches, then sends a UDP probe to the sink VM every millisecond; the sink notes the
first arrival (CLOCK_MONOTONIC is shared by all namespaces). Static ARP entries keep neighbour
resolution out of the figure. Between rounds the TES terminates and waits until the removal
is published and applied by the agent, so every attach starts from a quiet system.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from probe import SINK, Sink
from tenet.lab.lab import Lab
from tenet.model.tenancy import Vm

HERE = Path(__file__).parent
LINGER = 4.0  # s after the lab's own TESs stop: their endpoints go


def vm(lab: Lab, name: str) -> Vm:
    return next(v for v in lab.intent.vms if v.name == name)


def prepare(lab: Lab, tess: Sequence[Vm], sink: Vm) -> None:
    """Each TES attached once by the lab's own tenet-tes (the VN is up on its NVE), which is
    then stopped: the bench drives its own. Static ARP both ways between each TES and the sink."""
    for v in tess:
        lab.wait_attached(v.name, timeout=20)
        lab.stop_process("tes", f"{v.name}.eth0")
    s = sink.nics[0]
    for v in tess:
        lab.exec(v.name, "ip", "neigh", "replace", str(s.ip.ip), "lladdr", s.mac, "dev", "eth0", "nud", "permanent", check=True)
        lab.exec(sink.name, "ip", "neigh", "replace", str(v.nics[0].ip.ip), "lladdr", v.nics[0].mac, "dev", "eth0",
                 "nud", "permanent", check=True)
    time.sleep(LINGER)


def latency(lab: Lab, tes: Vm, sink: Vm, rounds: int) -> tuple[list[float], list[float]]:
    """`rounds` sequential attaches of `tes` (prepared): per round, the seconds from DISCOVER to
    the first packet at `sink`, and from DISCOVER to AUTH_RESULT."""
    py, nic = sys.executable, tes.nics[0]
    probe = Sink(lab.popen(sink.name, py, "-c", SINK, "ack", stdout=subprocess.PIPE, text=True))
    try:
        r = lab.exec(tes.name, py, str(HERE / "attach_tes.py"), "latency", nic.identity, nic.password, lab.store_url,
                     tes.host, str(sink.nics[0].ip.ip), str(rounds), timeout=60 + rounds)
        if r.returncode:
            raise RuntimeError(r.stderr[-2000:])
        driver = json.loads(r.stdout)
        arrivals = probe.drain()
    finally:
        probe.close()
    return ([arrivals[str(i)] - t0 for i, t0 in enumerate(driver["starts"]) if str(i) in arrivals],
            driver["attached"])
