"""The embedded store: one SQLite file shared by the controller and agents (WAL mode).

A revision counter and an event log give etcd's semantics: every mutation is one SQLite
transaction (BEGIN IMMEDIATE) that bumps the global revision; after it commits, the writer rings
the doorbells of the prefixes it touched (store/bells.py) and watch reads the log when its own
prefix's bell rings, with a slow poll as the fallback.
There is no server to expire leases, so every reader and writer reaps the expired ones (wall
clock, shared by all processes on the host) before it looks, and in each process one waiting
watcher of a database (its reaper) wakes when the next lease is due: the reaping commit rings
the bells of the keys it deleted, so their watchers wake as for any write. (When every watcher
woke at each due lease, a thousand of them looked every time the leader's 2-second lease came
round, renewed or not.)
"""
from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tenet.store.bells import DEPTH, Bells
from tenet.store.base import (
    Compacted,
    Compare,
    Delete,
    Event,
    KeyValue,
    LeaseExpired,
    Op,
    Put,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB, create_rev INTEGER, mod_rev INTEGER, version INTEGER,
                               lease INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS events (rev INTEGER, key TEXT, kind TEXT, value BLOB);
CREATE INDEX IF NOT EXISTS events_rev ON events (rev);
CREATE INDEX IF NOT EXISTS events_key ON events (key, rev);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER);
INSERT OR IGNORE INTO meta VALUES ('revision', 0), ('compacted', 0);
CREATE TABLE IF NOT EXISTS leases (id INTEGER PRIMARY KEY, ttl INTEGER, expiry REAL);
CREATE INDEX IF NOT EXISTS leases_expiry ON leases (expiry);
"""
HISTORY = 10000
BUSY_TIMEOUT_MS = 30_000  # a writer waits this long for another's write lock
POLL = 5.0  # fallback only: a commit rings its prefixes' bells, which wake their watchers at once;
# a thousand watchers looking twice a second cost a core of a 2-core machine (bench/scale.py)
POLL_UNARMED = 0.05  # without inotify (or a bell file), polling is all there is
# SQLite's own checkpoint runs inside the COMMIT that fills the WAL to 1,000 pages: one commit in
# 25 then took 10 ms instead of 0.5 before its bells could ring. Instead each writer, after
# ringing, checkpoints (PASSIVE: never waits for readers) every few commits or half second.
CHECKPOINT_COMMITS = 8
CHECKPOINT_EVERY = 0.5


_reapers: dict[tuple[int, str], threading.Lock] = {}  # (process, database): held by the watcher waiting for due leases
_reapers_lock = threading.Lock()


def _reaper(path: str) -> threading.Lock:
    key = (os.getpid(), path)  # a forked child's copy may be held by a thread it does not have
    with _reapers_lock:
        return _reapers.setdefault(key, threading.Lock())


def _history_index(prefix: str) -> str:
    """The index a watch of `prefix` reads the history by. A wide directory (everything, /tenet/,
    /tenet/hosts/) changes in most commits: by revision. Anything narrower (one host's keys,
    one key) changes in few: by key, so a look reads that prefix's own entries and not every
    event since the watcher last looked (with a thousand watchers, those scans were most of
    their CPU)."""
    directory = not prefix or prefix.endswith("/")
    return "events_rev" if directory and prefix.count("/") < DEPTH + prefix.startswith("/") else "events_key"


def _prefix_bounds(prefix: str) -> tuple[str, str]:
    return prefix, prefix + "\U0010ffff"


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        self.lock = threading.Lock()
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA wal_autocheckpoint=0")  # we checkpoint, after ringing: see _writing
            self.db.executescript(SCHEMA)
            if "lease" not in [r[1] for r in self.db.execute("PRAGMA table_info(kv)")]:  # a store from before leases
                try:
                    self.db.execute("ALTER TABLE kv ADD COLUMN lease INTEGER NOT NULL DEFAULT 0")
                except sqlite3.OperationalError as e:  # another process added it meanwhile
                    if "duplicate column" not in str(e):
                        raise
            self.db.execute("CREATE INDEX IF NOT EXISTS kv_lease ON kv (lease) WHERE lease != 0")
        self.touched: list[str] = []  # keys the open transaction changed: their bells ring after COMMIT
        self.commits, self.checkpoint_due = 0, 0.0  # since this connection last moved the WAL into the database, and when it next will
        self.bells = Bells(f"{path}-bells")
        self.reaper = _reaper(os.path.realpath(path))

    def close(self) -> None:
        self.db.close()  # the bells' inotify descriptor is the process's, shared by its stores

    # -- reads -------------------------------------------------------------------------
    def _meta(self, name: str) -> int:
        return self.db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()[0]

    def revision(self) -> int:
        with self.lock:
            self._reap()
            return self._meta("revision")

    def get(self, key: str) -> KeyValue | None:
        with self.lock:
            self._reap()
            row = self.db.execute("SELECT key, value, mod_rev, create_rev, version FROM kv WHERE key=?", (key,)).fetchone()
        return KeyValue(row[0], bytes(row[1]), row[2], row[3], row[4]) if row else None

    def range(self, prefix: str) -> list[KeyValue]:
        lo, hi = _prefix_bounds(prefix)
        with self.lock:
            self._reap()
            rows = self.db.execute(
                "SELECT key, value, mod_rev, create_rev, version FROM kv WHERE key >= ? AND key < ? ORDER BY key", (lo, hi)
            ).fetchall()
        return [KeyValue(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows]

    # -- writes ------------------------------------------------------------------------
    def put(self, key: str, value: bytes, lease: int = 0) -> int:
        return self.txn([], [Put(key, value, lease)])[1]

    def delete(self, key: str) -> int:
        return self.txn([], [Delete(key)])[1]

    def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> tuple[bool, int]:
        with self.lock, self._writing() as cur:
            self._expire(cur)
            ok = all(self._check(cur, c) for c in compares)
            rev = self._meta("revision") + 1
            changed = False
            for op in success if ok else failure:
                changed |= self._op(cur, op, rev)
            if changed:
                cur.execute("UPDATE meta SET value=? WHERE name='revision'", (rev,))
                floor = rev - HISTORY
                if floor > 0 and rev % 100 == 0:
                    cur.execute("DELETE FROM events WHERE rev < ?", (floor,))
                    cur.execute("UPDATE meta SET value=max(value, ?) WHERE name='compacted'", (floor,))
            else:
                rev -= 1
        return ok, rev

    def _check(self, cur: sqlite3.Cursor, c: Compare) -> bool:
        row = cur.execute("SELECT value, mod_rev, create_rev, version FROM kv WHERE key=?", (c.key,)).fetchone()
        actual: int | bytes
        if c.target == "value":
            if row is None:
                return False  # etcd: a missing key has no value to compare
            actual = bytes(row[0])
        else:
            actual = (row[{"mod": 1, "create": 2, "version": 3}[c.target]] if row else 0)
        return {"==": actual == c.operand, "!=": actual != c.operand, ">": actual > c.operand, "<": actual < c.operand}[c.op]  # type: ignore[operator]

    def _op(self, cur: sqlite3.Cursor, op: Op, rev: int) -> bool:
        if isinstance(op, Put):
            if not isinstance(op.value, bytes):
                raise TypeError(f"value for {op.key} must be bytes, not {type(op.value).__name__}")
            if op.lease and cur.execute("SELECT 1 FROM leases WHERE id=?", (op.lease,)).fetchone() is None:
                raise LeaseExpired(op.lease)
            cur.execute(
                "INSERT INTO kv (key, value, create_rev, mod_rev, version, lease) VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT(key) "
                "DO UPDATE SET value=excluded.value, mod_rev=excluded.mod_rev, version=version+1, lease=excluded.lease",
                (op.key, op.value, rev, rev, op.lease),
            )
            cur.execute("INSERT INTO events VALUES (?, ?, 'put', ?)", (rev, op.key, op.value))
            self.touched.append(op.key)
            return True
        keys = (
            [op.key]
            if isinstance(op, Delete)
            else [r[0] for r in cur.execute("SELECT key FROM kv WHERE key >= ? AND key < ?", _prefix_bounds(op.prefix))]
        )
        changed = False
        for k in keys:
            if cur.execute("DELETE FROM kv WHERE key=?", (k,)).rowcount:
                cur.execute("INSERT INTO events VALUES (?, ?, 'delete', NULL)", (rev, k))
                self.touched.append(k)
                changed = True
        return changed

    def compact(self, revision: int) -> None:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM events WHERE rev < ?", (revision,))
            self.db.execute("UPDATE meta SET value=max(value, ?) WHERE name='compacted'", (revision,))
            self.db.execute("COMMIT")

    # -- leases ------------------------------------------------------------------------
    def grant(self, ttl: int) -> int:
        if not isinstance(ttl, int) or ttl < 1:
            raise ValueError(f"lease TTL must be a whole number of seconds >= 1, not {ttl!r}")
        lease = secrets.randbits(62) or 1
        with self.lock:
            self.db.execute("INSERT INTO leases VALUES (?, ?, ?)", (lease, ttl, time.time() + ttl))
        return lease

    def keepalive(self, lease: int) -> int:
        with self.lock, self._writing() as cur:
            self._expire(cur)
            row = cur.execute("SELECT ttl FROM leases WHERE id=?", (lease,)).fetchone()
            if row:
                cur.execute("UPDATE leases SET expiry=? WHERE id=?", (time.time() + row[0], lease))
        if row is None:
            raise LeaseExpired(lease)
        return row[0]

    def lease_ttl(self, lease: int) -> tuple[int, float] | None:
        with self.lock:
            row = self.db.execute("SELECT ttl, expiry FROM leases WHERE id=?", (lease,)).fetchone()
        left = row[1] - time.time() if row else 0.0
        return (row[0], left) if row and left > 0 else None

    def revoke(self, lease: int) -> None:
        with self.lock, self._writing() as cur:
            self._expire(cur)
            self._drop(cur, lease)

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction (under the lock); once it commits, ring the bells of what it changed."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        self.touched.clear()
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            self.touched.clear()
            raise
        cur.execute("COMMIT")
        if self.touched:
            self.bells.ring(self.touched)
            self.touched.clear()
        self.commits += 1
        if self.commits >= CHECKPOINT_COMMITS or time.monotonic() >= self.checkpoint_due:
            self.commits, self.checkpoint_due = 0, time.monotonic() + CHECKPOINT_EVERY
            self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # after the bells: the watchers are on their way

    def _reap(self) -> None:
        """Under the lock, outside a transaction: expire what is due (a cheap look when nothing is).
        Best effort: when another process holds the write lock, its transaction expires what is
        due before it writes anything, so waiting for it would only queue a thousand watchers
        that woke for the same lapsed lease behind one another (and past the busy timeout)."""
        if not self.db.execute("SELECT 1 FROM leases WHERE expiry < ? LIMIT 1", (time.time(),)).fetchone():
            return
        self.db.execute("PRAGMA busy_timeout = 0")
        try:
            with self._writing() as cur:
                self._expire(cur)
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def _expire(self, cur: sqlite3.Cursor) -> None:
        for (lease,) in cur.execute("SELECT id FROM leases WHERE expiry < ?", (time.time(),)).fetchall():
            self._drop(cur, lease)

    def _drop(self, cur: sqlite3.Cursor, lease: int) -> None:
        """Delete the lease and its keys, in one new revision if it had any (as etcd does)."""
        cur.execute("DELETE FROM leases WHERE id=?", (lease,))
        keys = [r[0] for r in cur.execute("SELECT key FROM kv WHERE lease=? AND lease != 0 ORDER BY key", (lease,))]
        if keys:
            rev = self._meta("revision") + 1
            for k in keys:
                self._op(cur, Delete(k), rev)
            cur.execute("UPDATE meta SET value=? WHERE name='revision'", (rev,))

    # -- watch -------------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, timeout: float) -> list[Event]:
        lo, hi = _prefix_bounds(prefix)
        index = _history_index(prefix)
        deadline = time.monotonic() + timeout
        while True:
            ticket = self.bells.arm(prefix)  # before reading: a commit after the read still rings
            with self.lock:  # one read transaction: `now` and the rows are the same snapshot
                self._reap()
                self.db.execute("BEGIN")
                try:
                    if start_revision < self._meta("compacted"):
                        raise Compacted(start_revision)
                    now = self._meta("revision")
                    rows = self.db.execute(
                        f"SELECT kind, key, value, rev FROM events INDEXED BY {index} "
                        "WHERE rev >= ? AND key >= ? AND key < ? ORDER BY rev, rowid",  # a commit's ops in their order
                        (start_revision, lo, hi),
                    ).fetchall()
                    due = self.db.execute("SELECT min(expiry) FROM leases").fetchone()[0]
                finally:
                    self.db.execute("COMMIT")
            if rows:
                return [Event(r[0], r[1], bytes(r[2]) if r[2] is not None else None, r[3]) for r in rows]
            # nothing for us up to `now`: later looks scan only what is newer (a quiet prefix
            # would otherwise rescan the whole history on every wake)
            start_revision = max(start_revision, now + 1)
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            # the bell rings after a commit, so a woken watcher sees it; the poll covers a lost
            # ring, and the process's reaper the next lease's expiry (nobody commits it: the
            # first to look reaps it, and its deletes ring their bells)
            wait = min(left, POLL if ticket else POLL_UNARMED)
            reaping = due is not None and self.reaper.acquire(blocking=False)
            try:
                if reaping:
                    wait = min(wait, max(0.0, due - time.time()) + 0.001)
                if ticket:
                    self.bells.wait(ticket, wait)
                else:
                    time.sleep(wait)
            finally:
                if reaping:
                    self.reaper.release()
