"""Who leads, and how far its tables are (`tenet controllers`): read from the store alone,
so an operator sees the same on a deployment as `tenet lab status` shows of a lab. Only the
leader is in the store; followers leave no trace until one of them leads. Read-only."""
from __future__ import annotations

from dataclasses import dataclass

from tenet.controller.observed import through
from tenet.store import keys
from tenet.store.base import Store
from tenet.store.records import Leader


@dataclass(frozen=True)
class ControlStatus:
    leader: Leader | None  # None: no replica leads now (none runs, or a lease just lapsed)
    term: int  # the leader key's create revision, which fences its writes (0: none)
    observed: int  # every input written up to this revision is in the published tables
    revision: int  # the store's, when read

    def to_dict(self) -> dict:
        leader = {"name": self.leader.name, "pid": self.leader.pid, "since": self.leader.since} if self.leader else None
        return {"leader": leader, "term": self.term, "observed": self.observed, "revision": self.revision}


def status(store: Store) -> ControlStatus:
    revision = store.revision()
    kv = store.get(keys.controller_leader())
    return ControlStatus(Leader.from_json(kv.value) if kv else None, kv.create_revision if kv else 0,
                         through(store.get(keys.controller_observed())), revision)
