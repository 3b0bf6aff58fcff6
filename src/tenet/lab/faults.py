"""Faults the lab can inflict on its own underlay, and a ping that measures what they cost.

A router "fails silently", as one that loses power: its routing daemons are frozen first, so
it cannot announce anything, then its links go down. (Links taken down one by one while its
OSPF still runs would be announced over the remaining ones, and neighbours would reroute
within milliseconds: a kinder fault than a real one.)
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from tenet.lab.frr import DAEMONS


@dataclass(frozen=True)
class PingRun:
    sent: int
    received: int
    interval: float  # s between echoes

    @property
    def outage(self) -> float:
        """Seconds without traffic: lost echoes times the interval."""
        return (self.sent - self.received) * self.interval


@contextmanager
def router_down(lab, router: str) -> Iterator[None]:
    """The router dead for the duration of the block; alive (and re-adjacent later) after."""
    ports = [d for d in lab.exec(router, "ls", "/sys/class/net").stdout.split() if d.startswith("u")]
    daemons = [lab.process(d, router).pid for d in DAEMONS]
    for pid in daemons:
        os.kill(pid, signal.SIGSTOP)
    try:
        for dev in ports:
            lab.exec(router, "ip", "link", "set", dev, "down", check=True)
        yield
    finally:
        for dev in ports:
            lab.exec(router, "ip", "link", "set", dev, "up")
        for pid in daemons:
            os.kill(pid, signal.SIGCONT)


def ping_through(lab, vm: str, ip: str, fault: Callable[[], AbstractContextManager], *,
                 seconds: float = 8.0, interval: float = 0.02, after: float = 1.5) -> PingRun:
    """A continuous ping from `vm` to `ip` for `seconds`; the context `fault()` gives is entered
    `after` seconds in and left when the ping ends."""
    pinger = lab.popen(vm, "ping", "-i", str(interval), "-W1", "-w", str(int(seconds)), ip,
                       stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(after)
        with fault():
            out, _ = pinger.communicate(timeout=seconds + 10)
    finally:
        if pinger.poll() is None:
            pinger.kill()
            pinger.wait()
    found = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    if found is None:
        raise RuntimeError(f"ping from {vm} to {ip} printed no summary: {out[-200:]!r}")
    return PingRun(int(found[1]), int(found[2]), interval)
