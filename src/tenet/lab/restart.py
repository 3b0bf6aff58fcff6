"""When a process that failed is started again: systemd's `Restart=on-failure` with an
exponential `RestartSec` and a start limit (`StartLimitBurst` within `StartLimitIntervalSec`).

One fact drives both: the times the process was started within the last `interval`. Few recent
starts mean a short delay; a process that keeps dying climbs to `cap`; one started `burst`
times within the interval is not started again and stays failed, as systemd leaves a unit that
hit its start limit (an operator's `reset-failed`, here a new start, clears it). Pure: time is
an argument.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    initial: float = 0.2  # s before the first restart (RestartSec)
    factor: float = 2.0  # each further restart within the interval waits this much longer …
    cap: float = 3.2  # … up to this
    burst: int = 5  # starts allowed within `interval` (StartLimitBurst) …
    interval: float = 30.0  # … seconds (StartLimitIntervalSec): wide enough that the backoff
    # cannot outrun it: a process that dies within ~4 s of every start hits the limit

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.cap < self.initial or self.burst < 1 or self.interval <= 0:
            raise ValueError(f"an impossible restart policy: {self}")


def recent(starts: Sequence[float], now: float, policy: RestartPolicy) -> tuple[float, ...]:
    """The starts that still count against the limit at `now`."""
    return tuple(t for t in starts if now - t < policy.interval)


def delay(starts: Sequence[float], now: float, policy: RestartPolicy) -> float:
    """Seconds to wait, from the failure at `now`, before starting again: `initial` after a
    process that ran alone in its interval, doubling with every further recent start."""
    n = len(recent(starts, now, policy))
    return min(policy.initial * policy.factor ** max(n - 1, 0), policy.cap)


def may_start(starts: Sequence[float], now: float, policy: RestartPolicy) -> bool:
    """False once `burst` starts fall within the interval: the start limit is hit."""
    return len(recent(starts, now, policy)) < policy.burst


def schedule(policy: RestartPolicy, failures: int, runtime: float = 0.0) -> list[float]:
    """The delays a process that dies `runtime` s after each start meets, until it hits the
    start limit (at most `failures`): what docs and tests quote."""
    starts, now, out = [0.0], 0.0, []
    for _ in range(failures):
        now += runtime
        d = delay(starts, now, policy)
        if not may_start(starts, now + d, policy):
            break
        out.append(d)
        now += d
        starts.append(now)
    return out
