"""SQLite doorbells: a commit wakes the watchers of the prefixes it touched, and no others.

Watchers run in threads of their own store (as another process would) and a writer commits
through a second store on the same file; "not woken" is read from the watching store's bells
(the ring count of the other host's bell stays 0 while its watcher is still blocked), never
from a sleep.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tenet.store import keys
from tenet.store.bells import ALL, bell_of_prefix, bells_of_key, file_name
from tenet.store.sqlite import SqliteStore

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def db(tmp_path):
    return tmp_path / "store.db"


@pytest.fixture
def writer(db):
    s = SqliteStore(db)
    yield s
    s.close()


@pytest.fixture
def watcher(db, writer):
    s = SqliteStore(db)
    if s.bells.arm("") is None:  # watches then poll (correct, but not what these tests are about)
        pytest.skip("no inotify instance left for this user (fs.inotify.max_user_instances)")
    yield s
    s.close()


class Watch:
    """One watch in a thread: `done` is set when it returned; `events` is what it returned."""

    def __init__(self, store: SqliteStore, prefix: str, start: int, timeout: float = 30) -> None:
        self.prefix, self.events, self.done = prefix, None, threading.Event()
        self.thread = threading.Thread(target=self._run, args=(store, start, timeout), daemon=True)
        self.thread.start()

    def _run(self, store: SqliteStore, start: int, timeout: float) -> None:
        self.events = store.watch(self.prefix, start, timeout)
        self.done.set()


def _blocked(store: SqliteStore, *prefixes: str) -> None:
    """Wait until a thread waits on each prefix's bell: armed and past its read."""
    limit = time.monotonic() + 10
    while not all(store.bells.waiting(p) for p in prefixes):
        assert time.monotonic() < limit, f"no watcher blocked on {prefixes}"
        time.sleep(0.001)


def _rang(store: SqliteStore, prefix: str) -> None:
    limit = time.monotonic() + 10
    while not store.bells.rings(prefix):
        assert time.monotonic() < limit, f"the bell of {prefix!r} never rang"
        time.sleep(0.001)


def test_bells_of_keys_and_prefixes():
    assert bells_of_key("/tenet/hosts/h1/tables") == [ALL, "/tenet/", "/tenet/hosts/", "/tenet/hosts/h1/"]
    assert bells_of_key("/tenet/endpoints/h1/vn/mac") == [ALL, "/tenet/", "/tenet/endpoints/", "/tenet/endpoints/h1/"]
    assert bells_of_key("/tenet/fabric") == [ALL, "/tenet/"]
    assert bells_of_key("plain") == [ALL]
    assert bells_of_key("a/b/c/d/e") == [ALL, "a/", "a/b/", "a/b/c/"]
    assert bell_of_prefix("/tenet/hosts/h1/tables") == "/tenet/hosts/h1/"
    assert bell_of_prefix("/tenet/hosts/h1/") == "/tenet/hosts/h1/"
    assert bell_of_prefix("/tenet/hosts/h1") == "/tenet/hosts/"  # h1 also prefixes h10
    assert bell_of_prefix("/tenet/endpoints/h1/vn/") == "/tenet/endpoints/h1/"
    assert bell_of_prefix("a/b/c/d/") == "a/b/c/"
    assert bell_of_prefix("/") == bell_of_prefix("") == bell_of_prefix("/w") == ALL
    # every key under a prefix rings that prefix's bell
    for prefix, key in [("/tenet/hosts/h1/tables", "/tenet/hosts/h1/tables"), ("/tenet/hosts/h1", "/tenet/hosts/h10/x"),
                        ("/tenet/endpoints/h1/vn/", "/tenet/endpoints/h1/vn/m"), ("", "x"), ("/w", "/w/a")]:
        assert bell_of_prefix(prefix) in bells_of_key(key)
    names = {file_name(b) for b in [ALL, "/tenet/", "/tenet/hosts/h1/", "/tenet/hosts/h 1/", "/../x/"]}
    assert len(names) == 5 and all("/" not in n and not n.startswith(".") for n in names)


def test_a_commit_wakes_the_watchers_of_its_prefixes_only(writer, watcher):
    start = writer.revision() + 1
    ours = [Watch(watcher, p, start) for p in (keys.tables("a"), keys.host_prefix("a"), keys.hosts_prefix(), keys.ROOT)]
    other = Watch(watcher, keys.tables("b"), start)
    _blocked(watcher, keys.tables("a"), keys.host_prefix("a"), keys.hosts_prefix(), keys.ROOT, keys.tables("b"))
    rev = writer.put(keys.tables("a"), b"t")
    for w in ours:
        assert w.done.wait(10), f"the watcher of {w.prefix} was not woken"
        assert [(e.key, e.revision) for e in w.events] == [(keys.tables("a"), rev)]
        _rang(watcher, w.prefix)  # woken by its bell, not by the fallback poll
    assert not other.done.is_set() and watcher.bells.rings(keys.tables("b")) == 0  # b's bell never rang
    rev = writer.put(keys.tables("b"), b"t")
    assert other.done.wait(10) and [e.revision for e in other.events] == [rev]


def test_a_watcher_of_a_key_outside_tenet_and_of_everything_is_woken(writer, watcher):
    start = writer.revision() + 1
    everything, plain = Watch(watcher, "", start), Watch(watcher, "plain", start)
    _blocked(watcher, "", "plain")
    rev = writer.put("plain", b"1")
    for w in (everything, plain):
        assert w.done.wait(10) and [e.revision for e in w.events] == [rev]


def test_a_revoked_lease_rings_the_bells_of_its_keys(writer, watcher):
    lease = writer.grant(60)
    rev = writer.put(keys.alive("h1"), b"up", lease=lease)
    w = Watch(watcher, keys.alive_prefix(), rev + 1)
    _blocked(watcher, keys.alive_prefix())
    writer.revoke(lease)
    assert w.done.wait(10) and [(e.kind, e.key) for e in w.events] == [("delete", keys.alive("h1"))]
    _rang(watcher, keys.alive_prefix())


def test_an_expired_lease_wakes_the_watchers_of_its_keys(writer, watcher):
    lease = writer.grant(1)
    rev = writer.put(keys.alive("h1"), b"up", lease=lease)
    w = Watch(watcher, keys.alive_prefix(), rev + 1)
    assert w.done.wait(15), "the expiry was not seen"  # nobody writes: the watcher reaps when it is due
    assert [(e.kind, e.key) for e in w.events] == [("delete", keys.alive("h1"))]


def test_a_watcher_whose_bell_was_removed_still_sees_commits(writer, watcher, db):
    start = writer.revision() + 1
    w = Watch(watcher, keys.tables("a"), start)
    _blocked(watcher, keys.tables("a"))
    (Path(f"{db}-bells") / file_name(keys.host_prefix("a"))).unlink()  # the watcher re-arms at once
    rev = writer.put(keys.tables("a"), b"t")
    assert w.done.wait(10) and [e.revision for e in w.events] == [rev]


CHILD = """
import json, sys
from tenet.store.sqlite import SqliteStore
s = SqliteStore(sys.argv[1])
start = int(sys.argv[2])
print("ready", flush=True)
events = s.watch("/tenet/hosts/x/", start, 60)
print(json.dumps([[e.key, e.revision] for e in events]), flush=True)
"""


def test_many_stores_in_a_process_share_one_inotify_descriptor(db, watcher):
    """A process simulating many agents opens a store for each: the user's 128 inotify
    instances must not run out."""
    stores = [SqliteStore(db) for _ in range(3)]
    try:
        tickets = [s.bells.arm(keys.tables(f"h{i}")) for i, s in enumerate(stores)]
        assert all(tickets) and watcher.bells.arm("") is not None
        assert len([fd for fd in os.listdir("/proc/self/fd") if _is_inotify(fd)]) == 1
    finally:
        for s in stores:
            s.close()


def _is_inotify(fd: str) -> bool:
    try:
        return os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:inotify"
    except OSError:
        return False


def test_a_write_in_one_process_wakes_a_watch_in_another(writer, db):
    start = writer.revision() + 1
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(start)], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(SRC)})
    try:
        assert child.stdout.readline().strip() == "ready"
        bell = Path(f"{db}-bells") / file_name(keys.host_prefix("x"))
        limit = time.monotonic() + 30
        while not bell.exists():  # the child armed its bell (it may still be reading: either way it sees the write)
            assert time.monotonic() < limit and child.poll() is None
            time.sleep(0.005)
        rev = writer.put(keys.tables("x"), b"t")
        out, _ = child.communicate(timeout=60)
        assert json.loads(out) == [[keys.tables("x"), rev]]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_narrow_and_wide_watches_read_history_by_their_index_in_commit_order(writer, watcher):
    """A host's prefix is read by key (it changes in few commits), everything by revision;
    either way a commit's events come in the order of its ops."""
    from tenet.store.base import Put
    start = writer.revision() + 1
    ops = [Put(keys.tables("h1") + "/v9", b"1"), Put(keys.tables("h1") + "/v1", b"2"), Put(keys.tables("h1"), b"3")]
    writer.txn([], ops)
    writer.put(keys.tables("h2"), b"4")
    used = []
    watcher.db.set_trace_callback(lambda sql: used.append(sql) if "FROM events" in sql else None)
    narrow = watcher.watch(keys.tables("h1"), start, 0.0)
    wide = watcher.watch("", start, 0.0)
    watcher.db.set_trace_callback(None)
    assert [e.key for e in narrow] == [o.key for o in ops]
    assert [e.key for e in wide] == [o.key for o in ops] + [keys.tables("h2")]
    assert "INDEXED BY events_key" in used[0] and "INDEXED BY events_rev" in used[-1]


def test_the_writer_checkpoints_the_wal_itself_after_ringing(writer, db):
    """SQLite's own checkpoint would run inside a COMMIT, before its bells ring; the store turns
    it off and checkpoints after ringing, so the WAL still stays small."""
    from tenet.store.base import Put
    from tenet.store.sqlite import CHECKPOINT_COMMITS
    assert writer.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    for i in range(5 * CHECKPOINT_COMMITS):
        writer.txn([], [Put(keys.tables(f"h{i}") + f"/v{j}", b"x" * 1400) for j in range(25)])
    assert Path(f"{db}-wal").stat().st_size < 2_000_000  # 40 commits of 35 kB unchecked: ~6 MB
