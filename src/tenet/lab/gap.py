"""How long a VM was unreachable: a UDP echo server in the VM, probers in its peers sending a
numbered datagram every millisecond (or at the rate asked) and counting the answers.

The gap is the longest run of consecutive probes that got no answer, times the interval
(round trip: it covers both directions). Used by the migration tests and bench/migration.py.
"""
from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

PORT = 9998

ECHO = f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", {PORT}))
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(64)
    try:  # never blocked by one peer whose address is unresolved (its queue holds our buffer)
        s.sendto(data, socket.MSG_DONTWAIT, addr)
    except OSError:
        pass
"""

PROBER = f"""
import json, select, socket, sys, time
dst, interval, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
sent, answered = {{}}, set()
def drain():
    while True:
        try:
            answered.add(int(s.recv(64)))
        except (BlockingIOError, ValueError):
            return
print("go", flush=True)
start = time.monotonic()
end, due, seq = start + seconds, start, 0
while time.monotonic() < end:
    now = time.monotonic()
    if now >= due:
        try:
            s.sendto(str(seq).encode(), (dst, {PORT}))
        except OSError:
            pass  # no route for a moment: a lost probe
        sent[seq] = now
        seq += 1
        due += interval
    select.select([s], [], [], max(0.0, due - time.monotonic()))
    drain()
time.sleep(0.3)
drain()
runs, run = [], None
for q in range(seq):
    if q in answered:
        run = None
    elif run is None:
        run = [q, 1, sent[q] - start]
        runs.append(run)
    else:
        run[1] += 1
print(json.dumps({{"sent": seq, "answered": len(answered), "interval": interval, "start": start, "runs": runs}}), flush=True)
"""


@dataclass(frozen=True)
class Gaps:
    """One prober's stream: probes sent and answered, and each run of unanswered ones as
    (first probe's time from the start, length in seconds). `start` is CLOCK_MONOTONIC,
    which every namespace shares: a run is placed against the driver's own clock by it."""

    sent: int
    answered: int
    interval: float
    runs: tuple[tuple[float, float], ...]
    start: float = 0.0

    def within(self, begin: float, end: float) -> float:
        """The longest run that overlaps [begin, end] (driver's clock), in seconds; 0 if none."""
        return max((n for at, n in self.runs if self.start + at <= end and self.start + at + n >= begin), default=0.0)

    @property
    def lost(self) -> int:
        return self.sent - self.answered

    @property
    def longest(self) -> float:
        return max((length for _, length in self.runs), default=0.0)


class Echo:
    """The echo server, in the VM's namespace (it stays there through a migration)."""

    def __init__(self, lab, node: str) -> None:
        self.proc = lab.popen(node, "python3", "-c", ECHO, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise RuntimeError(f"the echo server in {node} did not start")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Prober:
    """A probe stream from `node` to `ip` for `seconds`; `gaps()` waits for its end."""

    def __init__(self, lab, node: str, ip: str, seconds: float, interval: float = 0.001) -> None:
        self.node = node
        self.proc = lab.popen(node, "python3", "-c", PROBER, ip, str(interval), str(seconds),
                              stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "go":
            self.proc.kill()
            raise RuntimeError(f"the prober in {node} did not start")

    def gaps(self) -> Gaps:
        out, _ = self.proc.communicate(timeout=60)
        d = json.loads(out.strip().splitlines()[-1])
        i = d["interval"]
        return Gaps(d["sent"], d["answered"], i, tuple((at, n * i) for _, n, at in d["runs"]), d["start"])
