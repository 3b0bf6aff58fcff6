"""Leader election among controller replicas, over the Store protocol (SQLite or etcd alike).

A candidate grants itself a lease and puts the leader key under it in a transaction whose
compare is "the key does not exist" (create revision 0): one transaction commits, and that
replica leads; the key's create revision names its term and fences its writes (fence.py).
The leader renews its lease every KEEPALIVE seconds from a thread of its own. The others
watch the key and campaign the moment it is deleted — when the leader revoked its lease on
the way out (SIGTERM: a successor at once), or stopped renewing it (SIGKILL, a hang, a
partition: the store deletes the key TTL seconds after the last renewal). A leader that has
not renewed within its TTL stops publishing before the store notices, and a leader whose
fenced write is refused stops at once: it may still think it leads, but the store does not.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from enum import Enum

from tenet.controller.fence import Fence
from tenet.store import keys
from tenet.store.base import Compare, KeyValue, LeaseExpired, Put, Store, StoreError, follow
from tenet.store.open import open_store
from tenet.store.records import Leader, RecordError

log = logging.getLogger("tenet.controller")
TTL = 2  # seconds: etcd's minimum lease with its default election timeout; a lapse costs at most this
KEEPALIVE = 0.5  # a renewal every quarter TTL: one lost or slow renewal costs nothing
WAIT = 1.0  # a follower's watch returns this often to look at its stop flag


class Role(str, Enum):
    FOLLOWING = "following"
    LEADING = "leading"


@dataclass(frozen=True)
class Term:
    """One replica's tenure: who, under which lease, and the fence its writes carry."""

    leader: Leader
    lease: int
    fence: Fence


class Keeper:
    """Renews a lease in a thread of its own. `valid()` while the last renewal is younger than
    the TTL, counted from when it was sent: the store's expiry is never earlier than that."""

    def __init__(self, store: Store, lease: int, ttl: int, every: float, since: float) -> None:
        self.store, self.lease, self.every = store, lease, every
        self.valid_until = since + ttl
        self.lost, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, name="lease", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(self.every):
            sent = time.monotonic()
            try:
                ttl = self.store.keepalive(self.lease)
            except LeaseExpired:
                self.lost.set()
                return
            except StoreError as e:  # the store may come back within the TTL: keep trying
                log.warning("renewing lease %x failed: %s", self.lease, e)
                continue
            self.valid_until = sent + ttl

    def valid(self) -> bool:
        return not self.lost.is_set() and time.monotonic() < self.valid_until

    def stop(self) -> None:
        self.done.set()


class Candidate:
    """One controller replica's side of the election: follow, campaign, lead, step down.
    It opens its own connections, so that neither a campaign nor a renewal ever waits behind
    the leader's publishing."""

    def __init__(self, url: str, name: str, ttl: int = TTL, every: float = KEEPALIVE) -> None:
        self.name, self.ttl, self.every = name, ttl, every
        self.store = open_store(url)
        self.renewals = open_store(url)
        self.role = Role.FOLLOWING
        self.term: Term | None = None
        self.keeper: Keeper | None = None
        self.followed = 0  # the term last logged as followed

    def elect(self, stopping: threading.Event) -> Term | None:
        """Follow until this replica leads; None when `stopping` is set first."""
        while not stopping.is_set():
            term = self.campaign()
            if term is not None:
                return term
            self.await_vacancy(stopping)
        return None

    def campaign(self) -> Term | None:
        """One attempt: lead if no one does (the term), else None."""
        key = keys.controller_leader()
        sent = time.monotonic()
        lease = self.store.grant(self.ttl)
        me = Leader(name=self.name, pid=os.getpid(), since=time.time())
        try:
            ok, rev = self.store.txn([Compare(key, "create", "==", 0)], [Put(key, me.to_json(), lease)])
        except StoreError:  # the answer was lost (etcd's OutcomeUnknown): the key tells
            kv = self.store.get(key)
            ok, rev = (kv is not None and kv.value == me.to_json()), (kv.create_revision if kv else 0)
        if not ok:
            self._revoke(lease)
            return None
        self.keeper = Keeper(self.renewals, lease, self.ttl, self.every, since=sent)
        self.term = Term(me, lease, Fence(rev))
        self.role = Role.LEADING
        log.info("%s: leading, term %d", self.name, rev)
        return self.term

    def await_vacancy(self, stopping: threading.Event) -> None:
        """Until the leader key is gone (or `stopping`): a watch on it, so that a lapsed lease
        is seen when the store deletes the key, not at the next poll."""
        key = keys.controller_leader()
        rev = self.store.revision() + 1
        kv = self.store.get(key)  # after the revision: a delete between the two is watched
        while kv is not None and not stopping.is_set():
            self._note(kv)
            rev, events = follow(self.store, key, rev, timeout=WAIT)
            if events is None or events:
                kv = self.store.get(key)

    def _note(self, kv: KeyValue) -> None:
        if kv.create_revision != self.followed:
            self.followed = kv.create_revision
            try:
                who = Leader.from_json(kv.value).name
            except RecordError as e:
                who = f"? ({e})"
            log.info("%s: following %s, term %d", self.name, who, kv.create_revision)

    def leading(self) -> bool:
        """Still leading as far as this replica can tell (its writes are fenced regardless)."""
        return self.role is Role.LEADING and self.keeper is not None and self.keeper.valid()

    def step_down(self, why: str) -> None:
        """Stop leading and give the key up now (a successor campaigns at once rather than
        after the TTL); a lease already gone, or a store out of reach, is no obstacle."""
        if self.term is None:
            return
        log.warning("%s: stepping down from term %d: %s", self.name, self.term.fence.term, why)
        if self.keeper is not None:
            self.keeper.stop()
        self._revoke(self.term.lease)
        self.role, self.term, self.keeper = Role.FOLLOWING, None, None

    def _revoke(self, lease: int) -> None:
        try:
            self.store.revoke(lease)
        except StoreError as e:
            log.warning("%s: revoking lease %x failed (it lapses by itself): %s", self.name, lease, e)

    def close(self) -> None:
        self.store.close()
        self.renewals.close()
