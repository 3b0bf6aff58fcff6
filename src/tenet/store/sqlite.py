"""The embedded store: one SQLite file shared by the controller and agents (WAL mode).

A revision counter and an event log give etcd's semantics: every mutation is one SQLite
transaction (BEGIN IMMEDIATE) that bumps the global revision; watch reads the log when the
write-ahead log changes (inotify, store/changes.py), with a slow poll as the fallback.
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from tenet.store.changes import Changes
from tenet.store.base import (
    Compacted,
    Compare,
    Delete,
    Event,
    KeyValue,
    Op,
    Put,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB, create_rev INTEGER, mod_rev INTEGER, version INTEGER);
CREATE TABLE IF NOT EXISTS events (rev INTEGER, key TEXT, kind TEXT, value BLOB);
CREATE INDEX IF NOT EXISTS events_rev ON events (rev);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER);
INSERT OR IGNORE INTO meta VALUES ('revision', 0), ('compacted', 0);
"""
HISTORY = 10000
POLL = 0.05  # fallback only: a commit wakes watchers at once through inotify
RECHECK, RECHECKS = 0.0005, 20  # after a wake that showed no new revision: up to 10 ms of quick looks
RECHECKS_AFTER_OTHER = 1  # after a wake that showed another prefix's new revision: one more look


def _prefix_bounds(prefix: str) -> tuple[str, str]:
    return prefix, prefix + "\U0010ffff"


class SqliteStore:
    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        self.lock = threading.Lock()
        with self.lock:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(SCHEMA)
        self.changes = Changes(f"{path}-wal")

    def close(self) -> None:
        self.changes.close()
        self.db.close()

    # -- reads -------------------------------------------------------------------------
    def _meta(self, name: str) -> int:
        return self.db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()[0]

    def revision(self) -> int:
        with self.lock:
            return self._meta("revision")

    def get(self, key: str) -> KeyValue | None:
        with self.lock:
            row = self.db.execute("SELECT key, value, mod_rev, create_rev, version FROM kv WHERE key=?", (key,)).fetchone()
        return KeyValue(row[0], bytes(row[1]), row[2], row[3], row[4]) if row else None

    def range(self, prefix: str) -> list[KeyValue]:
        lo, hi = _prefix_bounds(prefix)
        with self.lock:
            rows = self.db.execute(
                "SELECT key, value, mod_rev, create_rev, version FROM kv WHERE key >= ? AND key < ? ORDER BY key", (lo, hi)
            ).fetchall()
        return [KeyValue(r[0], bytes(r[1]), r[2], r[3], r[4]) for r in rows]

    # -- writes ------------------------------------------------------------------------
    def put(self, key: str, value: bytes) -> int:
        return self.txn([], [Put(key, value)])[1]

    def delete(self, key: str) -> int:
        return self.txn([], [Delete(key)])[1]

    def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> tuple[bool, int]:
        with self.lock:
            cur = self.db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
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
                cur.execute("COMMIT")
                return ok, rev
            except BaseException:
                cur.execute("ROLLBACK")
                raise

    def _check(self, cur: sqlite3.Cursor, c: Compare) -> bool:
        row = cur.execute("SELECT value, mod_rev, create_rev, version FROM kv WHERE key=?", (c.key,)).fetchone()
        actual: int | bytes
        if c.target == "value":
            actual = bytes(row[0]) if row else b""
        else:
            actual = (row[{"mod": 1, "create": 2, "version": 3}[c.target]] if row else 0)
        return {"==": actual == c.operand, "!=": actual != c.operand, ">": actual > c.operand, "<": actual < c.operand}[c.op]  # type: ignore[operator]

    def _op(self, cur: sqlite3.Cursor, op: Op, rev: int) -> bool:
        if isinstance(op, Put):
            if not isinstance(op.value, bytes):
                raise TypeError(f"value for {op.key} must be bytes, not {type(op.value).__name__}")
            cur.execute(
                "INSERT INTO kv VALUES (?, ?, ?, ?, 1) ON CONFLICT(key) DO UPDATE SET value=excluded.value, mod_rev=excluded.mod_rev, version=version+1",
                (op.key, op.value, rev, rev),
            )
            cur.execute("INSERT INTO events VALUES (?, ?, 'put', ?)", (rev, op.key, op.value))
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
                changed = True
        return changed

    def compact(self, revision: int) -> None:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM events WHERE rev < ?", (revision,))
            self.db.execute("UPDATE meta SET value=max(value, ?) WHERE name='compacted'", (revision,))
            self.db.execute("COMMIT")

    # -- watch -------------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, timeout: float) -> list[Event]:
        lo, hi = _prefix_bounds(prefix)
        deadline = time.monotonic() + timeout
        recheck, seen = 0, -1
        while True:
            armed = self.changes.arm()  # before reading: a commit after the read still wakes us
            with self.lock:  # one read transaction: `now` and the rows are the same snapshot
                self.db.execute("BEGIN")
                try:
                    if start_revision < self._meta("compacted"):
                        raise Compacted(start_revision)
                    now = self._meta("revision")
                    rows = self.db.execute(
                        "SELECT kind, key, value, rev FROM events WHERE rev >= ? AND key >= ? AND key < ? ORDER BY rev",
                        (start_revision, lo, hi),
                    ).fetchall()
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
            if recheck:
                # Woken, yet nothing for us. If no new revision is visible either, a commit's
                # last log write notified us a moment before SQLite published it in the
                # wal-index (shared memory, which inotify cannot see): look again shortly
                # instead of sleeping until the poll. If a new revision is visible, the wake
                # was another prefix's commit — under churn nearly every wake is — so only a
                # short look covers a commit of ours whose notification coalesced with it.
                recheck -= 1
                if now > seen:
                    recheck = min(recheck, RECHECKS_AFTER_OTHER - 1)
                seen = now
                time.sleep(min(left, RECHECK))
                continue
            seen = now
            if armed:
                recheck = RECHECKS if self.changes.wait(min(left, POLL)) else 0
            else:
                time.sleep(min(left, 0.005))
