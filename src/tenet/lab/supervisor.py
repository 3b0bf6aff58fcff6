"""The lab's supervisor: one process per lab, the parent of every process the lab runs, doing
what systemd does on a real host with `Restart=on-failure` (contrib/systemd/).

`tenet lab up` returns, so the lab cannot watch its processes itself; this process can, and as
their parent it learns how each one ended (exit code or signal), which no other process can.
The lab writes what it wants into `units/<role>@<node>.spec` and nudges the supervisor over
a datagram socket; the supervisor, level-triggered, compares every spec with its status
(lab/unit.py decides), starts, signals and restarts, and writes `units/<role>@<node>.status`,
the only file it writes and the one `tenet lab status` and `lab down` read the current PIDs
from. SIGTERM: it stops every running unit, last started first, and exits (`lab down`).

    python -m tenet.lab.supervisor --dir /run/tenet/labs/NAME
"""
from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tenet.lab import unit
from tenet.lab.liveness import facts
from tenet.lab.restart import RestartPolicy
from tenet.lab.unit import GRACE, Do, Phase, UnitSpec, UnitStatus

SOCKET = "supervisor.sock"
UNITS = "units"
IDLE = 1.0  # s between looks when nothing is due (a nudge or a child's exit wakes it at once)


def units_dir(lab_dir: Path) -> Path:
    return lab_dir / UNITS


def spec_path(lab_dir: Path, name: str) -> Path:
    return units_dir(lab_dir) / f"{name}.spec"


def status_path(lab_dir: Path, name: str) -> Path:
    return units_dir(lab_dir) / f"{name}.status"


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def read_specs(lab_dir: Path) -> dict[str, UnitSpec]:
    out = {}
    for p in units_dir(lab_dir).glob("*.spec"):
        try:
            spec = UnitSpec.from_json(p.read_text())
        except (OSError, ValueError, KeyError):
            continue  # being replaced: read at the next look
        out[spec.name] = spec
    return out


def read_status(lab_dir: Path, name: str) -> UnitStatus | None:
    try:
        return UnitStatus.from_json(status_path(lab_dir, name).read_text())
    except (OSError, ValueError, KeyError):
        return None


class Supervisor:
    def __init__(self, lab_dir: Path, policy: RestartPolicy = RestartPolicy(), grace: float = GRACE) -> None:
        self.dir, self.policy, self.grace = lab_dir, policy, grace
        self.children: dict[str, subprocess.Popen] = {}
        self.statuses: dict[str, UnitStatus] = {}
        self.stopping = False

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> None:
        units_dir(self.dir).mkdir(parents=True, exist_ok=True)
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        signal.set_wakeup_fd(wake_w.fileno())  # a child's exit or SIGTERM wakes the select
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        path = self.dir / SOCKET
        path.unlink(missing_ok=True)
        nudge = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        nudge.bind(str(path))
        nudge.setblocking(False)
        print(f"supervising {self.dir} (pid {os.getpid()}): {self.policy}", flush=True)
        while not self.stopping:
            self.look(time.time())
            timeout = self._next_due(time.time())
            ready, _, _ = select.select([nudge, wake_r], [], [], timeout)
            for s in ready:
                _drain(s)
        self.shutdown()
        path.unlink(missing_ok=True)

    def _stop(self, *_: object) -> None:
        self.stopping = True

    def look(self, now: float) -> None:
        """Reap what exited, then bring every unit one step towards its spec."""
        for name, child in list(self.children.items()):
            code = child.poll()
            if code is not None:
                del self.children[name]
                self._set(unit.exited(self.statuses[name], code, now, self.policy))
                print(f"{name}: pid {child.pid} {unit.describe_exit(code)} -> {self.statuses[name].phase.value}", flush=True)
        specs = read_specs(self.dir)
        for name in sorted(set(specs) | set(self.statuses)):
            self._act(specs.get(name), self.statuses.get(name), now)

    def _act(self, spec: UnitSpec | None, status: UnitStatus | None, now: float) -> None:
        do = unit.decide(spec, status, now, self.grace)
        if do is Do.START:
            assert spec is not None
            self._start(spec, status, now)
        elif do in (Do.SIGNAL, Do.KILL):
            assert status is not None
            own = spec is not None and spec.token == status.token
            sig = signal.SIGKILL if do is Do.KILL else (spec.signal if own and spec else signal.SIGTERM)
            child = self.children.get(unit.unit_name(status.role, status.node))
            if child is not None and child.poll() is None:
                child.send_signal(sig)
            if do is Do.SIGNAL:
                self._set(unit.signalled(status, now))
        elif do is Do.SETTLE:
            assert status is not None
            self._set(unit.settled(status, now))

    def _start(self, spec: UnitSpec, status: UnitStatus | None, now: float) -> None:
        try:
            with open(spec.log, "ab") as out:
                child = subprocess.Popen(list(spec.argv), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as e:
            self._set(unit.not_started(spec, status, f"cannot start {spec.argv[0]}: {e}", now))
            return
        self.children[spec.name] = child
        self._set(unit.started(spec, status, child.pid, facts(child.pid).start_time, now, self.policy))
        if status is not None and status.token == spec.token:
            print(f"{spec.name}: restarted as pid {child.pid} (restart {self.statuses[spec.name].restarts})", flush=True)

    def _set(self, status: UnitStatus) -> None:
        name = unit.unit_name(status.role, status.node)
        self.statuses[name] = status
        write_atomically(status_path(self.dir, name), status.to_json())

    def _next_due(self, now: float) -> float:
        dues = [s.due for s in self.statuses.values() if s.phase is Phase.BACKOFF]
        dues += [s.since + self.grace for s in self.statuses.values() if s.phase is Phase.STOPPING]
        return max(min([d - now for d in dues], default=IDLE), 0.0) if dues else IDLE

    def shutdown(self) -> None:
        """Every running unit stopped, the last started first, each given the grace."""
        specs = read_specs(self.dir)
        order = sorted(self.children, key=lambda n: specs[n].order if n in specs else 0, reverse=True)
        for name in order:
            child = self.children[name]
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(self.grace)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
            self._set(unit.exited(unit.signalled(self.statuses[name], time.time()), child.returncode, time.time(), self.policy))
        self.children.clear()


def _drain(s: socket.socket) -> None:
    try:
        while s.recv(512):
            pass
    except (BlockingIOError, InterruptedError):
        pass


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="tenet-lab-supervisor", description="Supervise one lab's processes.")
    p.add_argument("--dir", required=True, type=Path, help="the lab's run directory")
    a = p.parse_args(argv)
    Supervisor(a.dir).run()
    sys.exit(0)


if __name__ == "__main__":
    main()
