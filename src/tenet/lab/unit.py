"""A supervised lab process, as systemd sees a service: what the lab wants of it (`UnitSpec`,
written by the lab) and what it is (`UnitStatus`, written by the supervisor alone), and the
pure step between them.

The supervisor is level-triggered: on every look it compares each spec with its status and
`decide`s one action; an exit is folded in by `exited`. A spec's `token` names one start
request: a new token (the lab restarting an agent, say) replaces the process, while restarts
after failures keep the token and count. `Want.STOP` is `systemctl stop` with the signal of
the lab's choice: a process stopped so is never restarted, which is how the lab's faults kill
on purpose; a process that dies behind the supervisor's back (a crash, `kill -9` by PID) is.
"""
from __future__ import annotations

import json
import signal
from dataclasses import dataclass, replace
from enum import Enum

from tenet.lab import restart
from tenet.lab.restart import RestartPolicy

GRACE = 3.0  # s a stopped process has after SIGTERM before SIGKILL (TimeoutStopSec)


class Want(str, Enum):
    RUN = "run"  # keep it running: start it, restart it after a failure
    STOP = "stop"  # stop it with `signal` and leave it stopped


class Phase(str, Enum):
    RUNNING = "running"
    BACKOFF = "backoff"  # failed; started again at `due`
    FAILED = "failed"  # failed with its start limit hit (or could not be started): left so
    STOPPING = "stopping"  # signalled on request, not yet reaped
    STOPPED = "stopped"  # stopped on request
    EXITED = "exited"  # exited 0 on its own: not a failure, not restarted (Restart=on-failure)


class Do(str, Enum):
    NOTHING = "nothing"
    START = "start"  # a new process for the spec
    SIGNAL = "signal"  # the spec's stop signal (SIGTERM unless it says otherwise)
    KILL = "kill"  # SIGKILL: the grace after SIGTERM is over
    SETTLE = "settle"  # no process to signal: mark it stopped


@dataclass(frozen=True)
class UnitSpec:
    role: str
    node: str
    argv: tuple[str, ...]  # in full, `ip netns exec …` included
    log: str
    token: str  # one start request
    order: int = 0  # the lab's start order; the supervisor stops in reverse
    want: Want = Want.RUN
    signal: int = signal.SIGTERM  # with Want.STOP
    metrics: str = ""
    netns: str = ""

    @property
    def name(self) -> str:
        return unit_name(self.role, self.node)

    def to_json(self) -> str:
        return json.dumps({"role": self.role, "node": self.node, "argv": list(self.argv), "log": self.log,
                           "token": self.token, "order": self.order, "want": self.want.value, "signal": self.signal,
                           "metrics": self.metrics, "netns": self.netns})

    @classmethod
    def from_json(cls, text: str) -> UnitSpec:
        d = json.loads(text)
        return cls(d["role"], d["node"], tuple(d["argv"]), d["log"], d["token"], int(d.get("order", 0)),
                   Want(d.get("want", "run")), int(d.get("signal", signal.SIGTERM)), d.get("metrics", ""),
                   d.get("netns", ""))


@dataclass(frozen=True)
class UnitStatus:
    role: str
    node: str
    token: str  # the spec this is the status of
    phase: Phase
    pid: int = 0  # the current (or last) process
    start_time: int = 0  # its /proc start time: a recycled PID is never taken for it
    restarts: int = 0  # automatic restarts under this token
    starts: tuple[float, ...] = ()  # recent start times (wall clock), for the start limit
    last_exit: int | None = None  # as Popen.returncode: >= 0 an exit code, < 0 the signal
    last_exit_at: float = 0.0
    due: float = 0.0  # BACKOFF: when it starts again
    since: float = 0.0  # when it entered this phase
    error: str = ""  # why it could not be started

    def to_json(self) -> str:
        return json.dumps({k: (v.value if isinstance(v, Enum) else list(v) if isinstance(v, tuple) else v)
                           for k, v in self.__dict__.items()})

    @classmethod
    def from_json(cls, text: str) -> UnitStatus:
        d = json.loads(text)
        return cls(**{**d, "phase": Phase(d["phase"]), "starts": tuple(d.get("starts", ()))})


def unit_name(role: str, node: str) -> str:
    return f"{role}@{node}"


def describe_exit(code: int | None) -> str:
    """`exit 1`, `SIGKILL`, or "" when it has not exited."""
    if code is None:
        return ""
    if code < 0:
        try:
            return signal.Signals(-code).name
        except ValueError:
            return f"signal {-code}"
    return f"exit {code}"


def decide(spec: UnitSpec | None, status: UnitStatus | None, now: float, grace: float = GRACE) -> Do:
    """The one thing to do now for a unit, from what is wanted and what is. No spec (the lab
    forgot the unit): stop what runs."""
    if status is not None and (spec is None or spec.token != status.token or spec.want is Want.STOP):
        # a process that must not run (any more): stop it, SIGKILL after the grace
        if status.phase is Phase.RUNNING:
            return Do.SIGNAL
        if status.phase is Phase.STOPPING:
            stop_sig = spec.signal if spec is not None and spec.token == status.token else signal.SIGTERM
            return Do.KILL if stop_sig != signal.SIGKILL and now - status.since >= grace else Do.NOTHING
        if status.phase is Phase.BACKOFF and (spec is None or spec.token == status.token):
            return Do.SETTLE
    if spec is None or spec.want is Want.STOP:
        return Do.NOTHING
    if status is None or status.token != spec.token:
        return Do.START  # (the old process, if any, was stopped above first)
    if status.phase is Phase.BACKOFF and now >= status.due:
        return Do.START
    return Do.NOTHING


def started(spec: UnitSpec, status: UnitStatus | None, pid: int, start_time: int, now: float,
            policy: RestartPolicy) -> UnitStatus:
    """The status once a process for `spec` runs: a restart under the same token counts."""
    if status is not None and status.token == spec.token:
        return replace(status, phase=Phase.RUNNING, pid=pid, start_time=start_time, restarts=status.restarts + 1,
                       starts=(*restart.recent(status.starts, now, policy), now), due=0.0, since=now, error="")
    return UnitStatus(spec.role, spec.node, spec.token, Phase.RUNNING, pid, start_time, 0, (now,), since=now)


def not_started(spec: UnitSpec, status: UnitStatus | None, error: str, now: float) -> UnitStatus:
    """It could not even be executed: failed at once (no restart would fare better)."""
    base = status if status is not None and status.token == spec.token else UnitStatus(spec.role, spec.node, spec.token, Phase.FAILED)
    return replace(base, phase=Phase.FAILED, pid=0, start_time=0, since=now, error=error)


def exited(status: UnitStatus, code: int, now: float, policy: RestartPolicy) -> UnitStatus:
    """Its process was reaped with `code` (Popen's convention). On request: stopped. Exit 0:
    exited. Otherwise a failure: restart after the backoff, or failed at the start limit."""
    done = replace(status, last_exit=code, last_exit_at=now, since=now)
    if status.phase is Phase.STOPPING:
        return replace(done, phase=Phase.STOPPED)
    if code == 0:
        return replace(done, phase=Phase.EXITED)
    due = now + restart.delay(status.starts, now, policy)
    if not restart.may_start(status.starts, due, policy):
        return replace(done, phase=Phase.FAILED, error=f"start limit hit: {policy.burst} starts within {policy.interval:g}s")
    return replace(done, phase=Phase.BACKOFF, due=due)


def signalled(status: UnitStatus, now: float) -> UnitStatus:
    return replace(status, phase=Phase.STOPPING, since=now)


def settled(status: UnitStatus, now: float) -> UnitStatus:
    return replace(status, phase=Phase.STOPPED, due=0.0, since=now)

