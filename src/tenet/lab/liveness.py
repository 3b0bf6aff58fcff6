"""Is it alive now? Judged from facts read at the moment of asking, never from what the store
last heard: a process is alive when its PID exists, is not a zombie and is the very process
the lab started (same kernel start time); an agent's heartbeat is its lease's last renewal,
stale once older than two thirds of the lease: it renews every third, so it missed one (with
a margin for etcd, which tells the time left in whole seconds).

`judge` and `heartbeat` are pure; `facts` and `lease_age` read /proc and the store.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from tenet.store import keys
from tenet.store.base import Store, StoreError
from tenet.store.records import Alive, RecordError


class Liveness(str, Enum):
    ALIVE = "alive"
    GONE = "gone"  # no such PID
    ZOMBIE = "zombie"  # exited, not yet reaped
    RECYCLED = "recycled"  # the PID now belongs to another process


class Beat(str, Enum):
    FRESH = "fresh"
    STALE = "stale"  # older than the bound: it missed a renewal
    NONE = "none"  # no lease: never registered, stopped, or lapsed


@dataclass(frozen=True)
class ProcFacts:
    """/proc/<pid>/stat as read now (exists False: no such PID)."""
    exists: bool
    state: str = ""  # R, S, D, T, Z …
    start_time: int = -1


@dataclass(frozen=True)
class Heartbeat:
    beat: Beat
    age: float | None = None  # s since the last renewal (None: no lease)
    bound: float | None = None  # stale beyond this


def judge(facts: ProcFacts, start_time: int) -> Liveness:
    """The recorded process (`start_time` as recorded) as the facts show it now."""
    if not facts.exists:
        return Liveness.GONE
    if facts.start_time != start_time:
        return Liveness.RECYCLED
    if facts.state in ("Z", "X"):
        return Liveness.ZOMBIE
    return Liveness.ALIVE


def heartbeat(granted: int | None, remaining: float | None) -> Heartbeat:
    """From the agent's lease: `granted` TTL and `remaining` s (None: no lease). Age is what
    the last renewal used of the TTL; the bound two thirds of the TTL."""
    if granted is None or remaining is None or remaining <= 0:
        return Heartbeat(Beat.NONE)
    age, bound = max(granted - remaining, 0.0), round(granted * 2 / 3, 2)
    return Heartbeat(Beat.STALE if age > bound else Beat.FRESH, round(age, 2), bound)


def facts(pid: int) -> ProcFacts:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ProcFacts(False)
    rest = stat[stat.rindex(")") + 2 :].split()
    return ProcFacts(True, rest[0], int(rest[19]))


def alive(pid: int, start_time: int) -> bool:
    return judge(facts(pid), start_time) is Liveness.ALIVE


def agent_heartbeat(store: Store, host: str) -> Heartbeat:
    """The heartbeat of `host`'s agent: its Alive key names the lease it renews."""
    kv = store.get(keys.alive(host))
    if kv is None:
        return heartbeat(None, None)
    try:
        lease = Alive.from_json(kv.value).lease
    except RecordError:
        return heartbeat(None, None)
    if not lease:
        return heartbeat(None, None)
    try:
        ttl = store.lease_ttl(lease)
    except StoreError:
        return heartbeat(None, None)
    return heartbeat(*ttl) if ttl else heartbeat(None, None)
