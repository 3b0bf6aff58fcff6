"""The lab's side of supervision: tell the supervisor (lab/supervisor.py) what a unit should
be, nudge it, and wait until it is; read which process serves each unit now.

Any process may do this (`tenet lab up`, a test holding the Lab, `tenet apply --lab`): the
spec files are the request, one writer per unit at a time, and the status files the answer.
"""
from __future__ import annotations

import secrets
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from tenet.lab.netns import LabError
from tenet.lab.record import Proc, Record
from tenet.lab.supervisor import SOCKET, read_status, spec_path, units_dir, write_atomically
from tenet.lab.unit import GRACE, Phase, UnitSpec, UnitStatus, Want, unit_name

ROLE = "supervisor"  # how the lab's record names the supervisor's own process
SETTLED = (Phase.STOPPED, Phase.EXITED, Phase.FAILED)


class Supervision:
    def __init__(self, lab_dir: Path) -> None:
        self.dir = lab_dir

    def start(self, role: str, node: str, argv: list[str], log: str, *, order: int, metrics: str = "", netns: str = "",
              timeout: float = 10.0) -> UnitStatus:
        """A new process for the unit (a running one is stopped first), as a new token."""
        spec = UnitSpec(role, node, tuple(argv), log, secrets.token_hex(6), order, Want.RUN, signal.SIGTERM, metrics, netns)
        units_dir(self.dir).mkdir(parents=True, exist_ok=True)
        write_atomically(spec_path(self.dir, spec.name), spec.to_json())
        self._nudge()
        status = self._await(spec.name, lambda s: s is not None and s.token == spec.token and s.phase is not Phase.STOPPING,
                             timeout + GRACE, f"starting {spec.name}")
        if status.phase is Phase.FAILED and status.error:
            raise LabError(f"{spec.name}: {status.error}")
        return status

    def stop(self, role: str, node: str, sig: int = signal.SIGTERM, *, wait: bool = True) -> UnitStatus | None:
        """`systemctl stop` with signal `sig`: never restarted. `wait`: until it is reaped;
        else until the signal is sent."""
        name = unit_name(role, node)
        spec = self.spec(name)
        if spec is None:
            return None
        token = spec.token
        write_atomically(spec_path(self.dir, name), replace(spec, want=Want.STOP, signal=int(sig)).to_json())
        self._nudge()
        done = (lambda s: s is None or s.token != token or s.phase in SETTLED) if wait else \
            (lambda s: s is None or s.token != token or s.phase is not Phase.RUNNING)
        return self._await(name, done, GRACE + 5.0, f"stopping {name}")

    def spec(self, name: str) -> UnitSpec | None:
        try:
            return UnitSpec.from_json(spec_path(self.dir, name).read_text())
        except (OSError, ValueError, KeyError):
            return None

    def status(self, role: str, node: str) -> UnitStatus | None:
        return read_status(self.dir, unit_name(role, node))

    def _nudge(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.sendto(b".", str(self.dir / SOCKET))
        except OSError as e:
            raise LabError(f"the lab's supervisor does not answer at {self.dir / SOCKET} ({e}); see {self.dir}/supervisor.log") from None
        finally:
            s.close()

    def _await(self, name: str, done: Callable[[UnitStatus | None], bool], timeout: float, what: str) -> UnitStatus:
        deadline = time.monotonic() + timeout
        while not done(status := read_status(self.dir, name)):
            if time.monotonic() > deadline:
                raise LabError(f"{what}: the supervisor did not within {timeout:.0f}s; see {self.dir}/supervisor.log")
            time.sleep(0.005)
        return status  # type: ignore[return-value]


def current(record: Record) -> list[Proc]:
    """The record's processes with each supervised one's PID as it is now (restarts change it)."""
    sup = Supervision(record.dir)
    out = []
    for p in record.processes:
        s = sup.status(p.role, p.node) if p.role != ROLE else None
        out.append(replace(p, pid=s.pid, start_time=s.start_time) if s is not None and s.pid else p)
    return out
