"""First-packet probes shared by the latency benches: a UDP sink and a prober, each a small
script run inside a lab namespace, and the driver's side of the sink.

The sink (UDP :9999) prints `<round> <time.monotonic()>` at each round's *first* datagram —
CLOCK_MONOTONIC is shared by all namespaces, so the driver compares it with its own t0 — and,
started with `ack`, answers every datagram with `ack <round>` (bench/attach_tes.py probes until
it hears that). The prober sends `<round> <time>` to the sink every millisecond for the round
last written to its stdin, from before t0, and acknowledges each new round on stdout once its
first send was tried, so the driver knows it is probing before it takes t0. Sends fail
quietly while the VM has no usable interface yet.
"""
from __future__ import annotations

import select
import subprocess
import time

PORT = 9999

SINK = r"""
import socket, sys, time
ack = sys.argv[1:] == ["ack"]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9999))
seen = set()
print("ready", flush=True)
while True:
    data, addr = s.recvfrom(64)
    now = time.monotonic()
    rnd = data.split()[0].decode()
    if rnd not in seen:
        seen.add(rnd)
        print(rnd, now, flush=True)
    if ack:
        s.sendto(b"ack " + rnd.encode(), addr)
"""

PROBER = r"""
import socket, sys, threading, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rnd, told = [None], [None]
def read():
    for line in sys.stdin:
        rnd[0] = line.strip() or None
threading.Thread(target=read, daemon=True).start()
while True:
    r = rnd[0]
    if r is not None:
        try:
            s.sendto(f"{r} {time.monotonic()}".encode(), (sys.argv[1], 9999))
        except OSError:
            pass  # no interface yet: the VM is still being created
        if told[0] != r:
            told[0] = r
            print("go", r, flush=True)
    time.sleep(0.001)
"""


class Sink:
    """The driver's side of a running SINK: the first arrival of each round, in order read."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.seen: dict[str, float] = {}
        try:
            if self._line(20.0) != "ready":
                raise RuntimeError("the sink did not start")
        except BaseException:
            self.close()
            raise

    def _line(self, timeout: float) -> str | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, timeout))
        if not ready:
            return None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the sink exited (code {self.proc.poll()})")
        return line.strip()

    def first(self, rnd: str, timeout: float = 10.0) -> float:
        """When round `rnd`'s first probe arrived (monotonic seconds); RuntimeError after `timeout`."""
        deadline = time.monotonic() + timeout
        while rnd not in self.seen:
            line = self._line(deadline - time.monotonic())
            if line is None:
                raise RuntimeError(f"round {rnd}: no probe reached the sink in {timeout:.0f} s")
            got, t = line.split()
            self.seen[got] = float(t)
        return self.seen[rnd]

    def drain(self) -> dict[str, float]:
        """Stop the sink and return every first arrival it printed."""
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2:
                self.seen.setdefault(parts[0], float(parts[1]))
        return self.seen

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Prober:
    """The driver's side of a running PROBER: `go(rnd)` returns once it is probing for `rnd`."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc

    def go(self, rnd: str, timeout: float = 10.0) -> None:
        self.proc.stdin.write(f"{rnd}\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline().strip() if ready else ""
        if line != f"go {rnd}":
            raise RuntimeError(f"the prober did not start round {rnd} (said {line!r}, code {self.proc.poll()})")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
