"""How a lab installs tenet's control plane: the topology's `control:` block.

`control: {store: etcd, etcd_members: 3, controllers: 2}` makes the lab start an etcd cluster
and controller replicas on a management network, as an operator would (docs/deploy.md);
`accounting`, `interim` and `interim_min` go into every agent's `[radius]` (docs/aaa.md). The
default is one machine's setup: a SQLite file and one controller. Lab policy, not intent: the
model's loader ignores this block and the store never holds it.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from tenet.model.errors import IntentError, Problem

KEYS = {"store", "etcd_members", "controllers", "fast_lane", "accounting", "interim", "interim_min"}
MAX_MEMBERS = 7
MAX_CONTROLLERS = 5


class StoreKind(str, Enum):
    SQLITE = "sqlite"
    ETCD = "etcd"


@dataclass(frozen=True)
class Control:
    store: StoreKind = StoreKind.SQLITE
    etcd_members: int = 0  # 0 with SQLite
    controllers: int = 1
    fast_lane: bool = True  # the agents' fast lane (agent/fast_lane.py); off: every admission waits for the controller
    accounting: bool = True  # RADIUS accounting from the agents (off: their [radius] accounting_port = 0)
    interim: int = 60  # the agents' [radius] interim: seconds between accounting Interim-Updates
    interim_min: int = 60  # … and interim_min, the floor (a lab goes lower to see interims in seconds)

    def to_dict(self) -> dict:
        return {"store": self.store.value, "etcd_members": self.etcd_members, "controllers": self.controllers,
                "fast_lane": self.fast_lane, "accounting": self.accounting, "interim": self.interim,
                "interim_min": self.interim_min}

    @classmethod
    def from_dict(cls, d: dict) -> Control:
        """As the lab's record keeps it ({}: a lab recorded before the block existed)."""
        return cls(StoreKind(d.get("store", "sqlite")), int(d.get("etcd_members", 0)), int(d.get("controllers", 1)),
                   bool(d.get("fast_lane", True)), bool(d.get("accounting", True)), int(d.get("interim", 60)),
                   int(d.get("interim_min", 60)))


def control_of(doc: Any, source: str = "") -> Control:
    """The `control:` block of a topology document (absent: the default), or IntentError
    naming each bad field."""
    raw = doc.get("control") if isinstance(doc, dict) else None
    if raw is None:
        return Control()
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        raise IntentError((Problem("control", "must be a mapping"),), source)
    for k in sorted(set(raw) - KEYS):
        problems.append(Problem(f"control.{k}", f"unknown key (expected one of {', '.join(sorted(KEYS))})"))
    try:
        store = StoreKind(raw.get("store", "sqlite"))
    except ValueError:
        problems.append(Problem("control.store", f"must be sqlite or etcd, not {raw.get('store')!r}"))
        store = StoreKind.SQLITE
    members = raw.get("etcd_members", 3 if store is StoreKind.ETCD else 0)
    if store is StoreKind.SQLITE and "etcd_members" in raw:
        problems.append(Problem("control.etcd_members", "only with store: etcd"))
    elif store is StoreKind.ETCD and (type(members) is not int or not 1 <= members <= MAX_MEMBERS or members % 2 == 0):
        problems.append(Problem("control.etcd_members", f"an odd number from 1 to {MAX_MEMBERS}, not {members!r}"))
    controllers = raw.get("controllers", 1)
    if type(controllers) is not int or not 1 <= controllers <= MAX_CONTROLLERS:
        problems.append(Problem("control.controllers", f"a number from 1 to {MAX_CONTROLLERS}, not {controllers!r}"))
    fast_lane = raw.get("fast_lane", True)
    if not isinstance(fast_lane, bool):
        problems.append(Problem("control.fast_lane", f"true or false, not {fast_lane!r}"))
    accounting = raw.get("accounting", True)
    if not isinstance(accounting, bool):
        problems.append(Problem("control.accounting", f"true or false, not {accounting!r}"))
    seconds = {}
    for key, low in (("interim", 0), ("interim_min", 1)):
        v = raw.get(key, 60)
        if type(v) is not int or not low <= v <= 86400:
            problems.append(Problem(f"control.{key}", f"seconds from {low} to 86400, not {v!r}"))
            v = 60
        seconds[key] = v
    if problems:
        raise IntentError(tuple(problems), source)
    return Control(store, members if store is StoreKind.ETCD else 0, controllers, fast_lane, accounting is not False,
                   **seconds)
