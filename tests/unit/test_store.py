"""Store contract: etcd v3 semantics, the same assertions against every backend — SQLite and a
real etcd (Debian's etcd-server, started per test on loopback in a temporary directory)."""
from __future__ import annotations

import http.client
import multiprocessing
import shutil
import socket
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tenet.store import keys
from tenet.store.base import MAX_TXN_OPS, Compacted, Compare, Delete, DeletePrefix, LeaseExpired, Put, StoreError, follow, in_chunks
from tenet.store.etcd import EtcdStore, EtcdUrl, Login, Tls, parse_url
from tenet.store.netns import dial
from tenet.store.open import open_store

from etcd_cluster import EtcdCluster, needs_etcd


def test_put_get_revisions_and_versions(store):
    assert store.get("/a") is None and store.revision() == 0
    r1 = store.put("/a", b"1")
    r2 = store.put("/a", b"2")
    kv = store.get("/a")
    assert (r1, r2) == (1, 2)
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == (b"2", 1, 2, 2)


def test_range_is_by_prefix_and_sorted(store):
    for k in ("/p/b", "/p/a", "/q/a", "/p"):
        store.put(k, k.encode())
    assert [kv.key for kv in store.range("/p/")] == ["/p/a", "/p/b"]


def test_delete_is_idempotent(store):
    store.put("/a", b"1")
    r = store.delete("/a")
    assert store.get("/a") is None
    assert store.delete("/a") == r  # nothing deleted: no new revision


def test_txn_is_atomic_with_one_revision(store):
    store.put("/x", b"0")
    ok, rev = store.txn([Compare("/x", "value", "==", b"0")], [Put("/x", b"1"), Put("/y", b"1")], [Put("/z", b"no")])
    assert ok and store.get("/x").mod_revision == store.get("/y").mod_revision == rev
    ok, _ = store.txn([Compare("/x", "value", "==", b"0")], [Put("/x", b"2")], [Put("/z", b"else")])
    assert not ok and store.get("/x").value == b"1" and store.get("/z").value == b"else"
    store.txn([], [DeletePrefix("/")])
    assert store.range("/") == []


def test_txn_rolls_back_on_error(store):
    store.put("/x", b"0")
    with pytest.raises(TypeError):
        store.txn([], [Put("/x", b"1"), Put("/y", object())])  # second op cannot be stored
    assert store.get("/x").value == b"0" and store.get("/y") is None


def test_watch_replays_then_waits(url, store):
    store.put("/w/a", b"1")
    store.put("/other", b"x")
    store.delete("/w/a")
    events = store.watch("/w/", 1, timeout=0.1)
    assert [(e.kind, e.key, e.revision) for e in events] == [("put", "/w/a", 1), ("delete", "/w/a", 3)]
    t0 = time.monotonic()
    assert store.watch("/w/", 4, timeout=0.2) == []
    assert time.monotonic() - t0 >= 0.2

    def later():
        time.sleep(0.2)
        other = open_store(url)
        other.put("/w/b", b"2")
        other.close()

    threading.Thread(target=later).start()
    events = store.watch("/w/", 4, timeout=5)
    assert [(e.key, e.value) for e in events] == [("/w/b", b"2")]


def test_a_watcher_woken_by_other_prefixes_skips_nothing_of_its_own(url, store):
    """A watch looks only at revisions newer than its last look; commits under other
    prefixes wake it many times before its own arrives, and that one is still returned."""
    for i in range(50):
        store.put(f"/other/{i}", b"x")
    start = store.revision() + 1

    def writer():
        other = open_store(url)
        for i in range(200):
            other.put(f"/other/{i % 7}", str(i).encode())
            if i == 150:
                other.put("/w/mine", b"1")
        other.close()

    t = threading.Thread(target=writer)
    t.start()
    events = store.watch("/w/", start, timeout=10)
    t.join()
    assert [(e.kind, e.key, e.value) for e in events] == [("put", "/w/mine", b"1")]
    assert events[0].revision == start + 151


def test_compacted_history_is_reported(store):
    for i in range(5):
        store.put("/c", str(i).encode())
    store.compact(4)
    with pytest.raises(Compacted):
        store.watch("/", 2, timeout=0)
    assert [e.revision for e in store.watch("/", 4, timeout=0)] == [4, 5]


def test_follow_advances_past_what_it_saw_and_reports_compaction_as_none(store):
    for i in range(5):
        store.put("/c", str(i).encode())
    rev, events = follow(store, "/c", 4, timeout=0)
    assert rev == 6 and [e.revision for e in events] == [4, 5]
    assert follow(store, "/c", 6, timeout=0) == (6, [])
    store.compact(4)
    assert follow(store, "/c", 2, timeout=0) == (6, None)


def test_value_compare_on_a_missing_key_is_false(store):
    """etcd's rule, which SQLite follows: a missing key has no value, not an empty one."""
    for op in ("==", "!=", "<", ">"):
        ok, _ = store.txn([Compare("/none", "value", op, b"")], [Put("/hit", op.encode())])
        assert not ok
    assert store.get("/hit") is None
    ok, _ = store.txn([Compare("/none", "mod", "==", 0), Compare("/none", "version", "==", 0), Compare("/none", "create", "<", 1)],
                      [Put("/hit", b"absent")])
    assert ok and store.get("/hit").value == b"absent"


def test_compares_on_revisions_and_versions(store):
    store.put("/k", b"a")
    kv = store.get("/k")
    store.put("/k", b"b")
    assert store.txn([Compare("/k", "create", "==", kv.create_revision), Compare("/k", "version", "==", 2),
                      Compare("/k", "mod", ">", kv.mod_revision), Compare("/k", "value", ">", b"a")], [])[0]
    assert not store.txn([Compare("/k", "mod", "==", kv.mod_revision)], [])[0]
    assert not store.txn([Compare("/k", "version", "<", 2)], [])[0]


def test_a_txn_that_changes_nothing_makes_no_revision(store):
    rev = store.put("/a", b"1")
    assert store.txn([], [Delete("/none"), DeletePrefix("/nothing/")]) == (True, rev)
    assert store.txn([Compare("/a", "value", "==", b"2")], [Put("/a", b"3")]) == (False, rev)
    assert store.revision() == rev


def test_in_chunks_writes_max_txn_ops_to_a_commit(url, store):
    """MAX_TXN_OPS fits in one transaction on every backend (etcd refuses more than 128 by
    default — a clear StoreError; SQLite does not check, so callers must chunk)."""
    in_chunks(store, [Put(f"/many/{i:03}", b"x") for i in range(2 * MAX_TXN_OPS + 50)])
    assert len(store.range("/many/")) == 2 * MAX_TXN_OPS + 50 and store.revision() == 3
    if url.startswith("etcd://"):
        with pytest.raises(StoreError, match="too many operations"):
            store.txn([], [Put(f"/many/{i:03}", b"y") for i in range(129)])


def test_in_chunks_with_compares_writes_only_while_they_hold(store):
    """Each chunk carries the compares: refused, nothing of that chunk (or after it) is written."""
    store.put("/term", b"1")
    ops = [Put(f"/fenced/{i:03}", b"x") for i in range(MAX_TXN_OPS + 1)]
    assert not in_chunks(store, ops, [Compare("/term", "value", "==", b"2")])
    assert store.range("/fenced/") == []
    assert in_chunks(store, ops, [Compare("/term", "value", "==", b"1")])
    assert len(store.range("/fenced/")) == MAX_TXN_OPS + 1


def test_compaction_past_a_watchers_revision_means_read_again(url, store):
    """A watcher that saw everything up to `rev` comes back after the history it needs was
    compacted away: it is told so (Compacted; follow answers None), never a silent [] — the
    timeout is long, so swallowing the compaction (as etcd3gw does) would fail here."""
    store.put("/w/a", b"1")
    rev, events = follow(store, "/w/", 1, timeout=5)
    assert [e.key for e in events] == ["/w/a"] and rev == 2
    writer = open_store(url)
    for i in range(5):
        writer.put("/w/b", str(i).encode())
    writer.compact(writer.revision())
    writer.close()
    with pytest.raises(Compacted) as info:
        store.watch("/w/", rev, timeout=30)
    assert info.value.revision == rev
    now = store.revision()
    assert follow(store, "/w/", rev, timeout=30) == (now + 1, None)
    assert store.get("/w/b").value == b"4"  # what a reader told to look again finds
    assert [e.value for e in store.watch("/w/", now, timeout=5)] == [b"4"]  # the present is still watchable


def test_keys_under_a_revoked_lease_go_in_one_revision(store):
    lease = store.grant(30)
    store.put("/l/a", b"1", lease=lease)
    start = store.txn([], [Put("/l/b", b"2", lease), Put("/l/c", b"3")])[1]
    store.revoke(lease)
    assert [kv.key for kv in store.range("/l/")] == ["/l/c"]
    events = store.watch("/l/", start + 1, timeout=5)
    assert [(e.kind, e.key, e.revision) for e in events] == [("delete", "/l/a", start + 1), ("delete", "/l/b", start + 1)]
    store.revoke(lease)  # again: nothing
    assert store.revision() == start + 1
    with pytest.raises(LeaseExpired):
        store.keepalive(lease)


def test_a_put_detaches_a_key_from_its_lease(store):
    lease = store.grant(30)
    store.put("/l/a", b"1", lease=lease)
    store.put("/l/a", b"2")
    store.revoke(lease)
    assert store.get("/l/a").value == b"2"


def test_a_put_under_an_unknown_lease_is_refused(store):
    with pytest.raises(LeaseExpired):
        store.put("/l/a", b"1", lease=12345)
    with pytest.raises(LeaseExpired):
        store.txn([], [Put("/l/b", b"1"), Put("/l/a", b"1", 12345)])
    assert store.range("/l/") == [] and store.revision() == 0


def test_bad_lease_ttl_is_a_clear_error(store):
    for ttl in (0, -1, 1.5):
        with pytest.raises(ValueError, match="TTL"):
            store.grant(ttl)


def test_a_lease_not_kept_alive_expires_and_deletes_its_keys(url, store):
    lease = store.grant(1)
    rev = store.put("/live/h1", b"up", lease=lease)
    store.put("/live/h2", b"no lease")
    events = store.watch("/live/h1", rev + 1, timeout=30)  # returns when the expiry's delete arrives
    assert [(e.kind, e.key) for e in events] == [("delete", "/live/h1")]
    assert store.get("/live/h1") is None and store.get("/live/h2").value == b"no lease"
    with pytest.raises(LeaseExpired):
        store.keepalive(lease)
    with pytest.raises(LeaseExpired):
        store.put("/live/h1", b"up", lease=lease)


def test_keepalive_renews_the_lease(store):
    lease = store.grant(2)
    store.put("/live/h1", b"up", lease=lease)
    for _ in range(3):  # 3 s in all: longer than the TTL, never 2 s without a renewal
        time.sleep(1.0)
        assert store.keepalive(lease) == 2
    assert store.get("/live/h1").value == b"up"
    store.revoke(lease)


def test_a_lease_tells_how_long_ago_it_was_renewed(store):
    lease = store.grant(10)
    time.sleep(1.1)
    granted, left = store.lease_ttl(lease)
    assert granted == 10 and 7.9 <= left <= 8.9  # etcd answers whole seconds, rounded down
    store.keepalive(lease)
    assert store.lease_ttl(lease)[1] >= 9
    store.revoke(lease)
    assert store.lease_ttl(lease) is None


def _increment(url: str, n: int) -> None:
    s = open_store(url)
    for _ in range(n):
        while True:
            kv = s.get("/counter")
            cur = int(kv.value) if kv else 0
            cmp = [Compare("/counter", "mod", "==", kv.mod_revision if kv else 0)]
            if s.txn(cmp, [Put("/counter", str(cur + 1).encode())])[0]:
                break
        s.put(f"/seq/{multiprocessing.current_process().pid}/{_}", b"x")
    s.close()


def test_concurrent_processes_lose_nothing(url, store):
    procs = [multiprocessing.Process(target=_increment, args=(url, 50)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert int(store.get("/counter").value) == 200
    assert len(store.range("/seq/")) == 200
    assert store.revision() == 400


def test_keys_reject_bad_components():
    assert keys.tables("host1") == "/tenet/hosts/host1/tables"
    with pytest.raises(ValueError):
        keys.tables("a/b")


def test_unknown_url_is_a_clear_error():
    with pytest.raises(StoreError, match="unknown store URL"):
        open_store("redis://x")


def _watchers(cluster: EtcdCluster, member: int) -> int:
    for line in _get(cluster, member, "/metrics").splitlines():
        if line.startswith("etcd_debugging_mvcc_watcher_total "):
            return int(float(line.split()[1]))
    return 0


def _get(cluster: EtcdCluster, member: int, path: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", cluster.client_ports[member], timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


@needs_etcd
def test_killing_the_member_in_use_fails_over_and_a_waiting_watch_resumes():
    """Three members; the clients talk to the leader; it is SIGKILLed while a watch waits on it
    and a lease is held. Writes, CAS and reads go on through the others (after the election),
    the watch resumes from its revision on another member and sees the next write, and the
    lease survives (leases are replicated)."""
    cluster = EtcdCluster(3, heartbeat_ms=50, election_ms=500)
    try:
        leader = cluster.leader()
        order = [leader] + [i for i in range(3) if i != leader]
        url = "etcd://" + ",".join(f"127.0.0.1:{cluster.client_ports[i]}" for i in order)
        store, watcher = open_store(url), open_store(url)
        lease = store.grant(30)
        store.put("/h/alive", b"1", lease=lease)
        rev = store.put("/w/before", b"1")
        got: list = []
        t = threading.Thread(target=lambda: got.append(watcher.watch("/w/", rev + 1, timeout=60)))
        t.start()
        for _ in range(600):  # readiness: the watch is established on the leader
            if _watchers(cluster, leader) >= 1:
                break
            time.sleep(0.02)
        else:
            raise AssertionError("the watch never reached the leader")
        cluster.kill(leader)
        after = store.put("/w/after", b"2")  # may be applied twice: a put is repeated when its answer is lost
        t.join(60)
        assert len(got) == 1 and got[0], "the watch returned nothing"
        events = [(e.kind, e.key, e.value) for e in got[0]]
        assert events == [("put", "/w/after", b"2")] * len(events)
        assert got[0][0].revision == rev + 1 and got[0][-1].revision <= after  # resumed from its revision: nothing lost
        kv = store.get("/w/after")
        assert store.txn([Compare("/w/after", "mod", "==", kv.mod_revision)], [Put("/w/after", b"3")])[0]
        assert store.keepalive(lease) == 30 and store.get("/h/alive").value == b"1"
        assert [kv.key for kv in watcher.range("/w/")] == ["/w/after", "/w/before"]
        store.close()
        watcher.close()
    finally:
        cluster.stop()


@needs_etcd
def test_all_members_down_is_a_clear_error():
    cluster = EtcdCluster(1)
    store = EtcdStore.from_url(cluster.url)
    store.patience = 0.5
    store.put("/a", b"1")
    cluster.stop()
    with pytest.raises(StoreError, match="etcd unreachable"):
        store.get("/a")
    with pytest.raises(StoreError, match="etcd unreachable"):
        store.watch("/", 1, timeout=5)  # not [] as if nothing had changed


@pytest.mark.parametrize("bad, why", [
    ("etcd://", "bad etcd endpoint"),
    ("etcd://host", "bad etcd endpoint"),
    ("etcd://h:1,h:x", "bad etcd endpoint"),
    ("etcd://h:70000", "bad etcd endpoint"),
    ("etcd://h:1?cacert=/nonexistent", "does not exist"),
    ("etcd://h:1?ca=/etc/hostname", "unknown etcd URL option"),
    ("etcd://h:1?cacert=/etc/hostname&cert=/etc/hostname", "both cert and key"),
    ("etcd://h:1?cert=/etc/hostname&key=/etc/hostname", "needs cacert"),
    ("etcd://h:1?user=root", "both user and password-file"),
    ("etcd://h:1?password-file=/nonexistent&user=root", "does not exist"),
    ("etcd://h:1?netns=", "must name a network namespace"),
    ("etcd://h:1?netns=../x", "must name a network namespace"),
])
def test_bad_etcd_urls_are_clear_errors(bad, why):
    with pytest.raises(StoreError, match=why):
        open_store(bad)


def test_etcd_url_forms():
    assert parse_url("etcd://10.0.0.1:2379,etcd-b:2379,[::1]:2379") == EtcdUrl((("10.0.0.1", 2379), ("etcd-b", 2379), ("::1", 2379)))
    assert parse_url("etcd://h:1?cacert=/etc/hostname&user=agent-a&password-file=/etc/hostname&netns=tn-x-mgmt") == \
        EtcdUrl((("h", 1),), Tls("/etc/hostname"), Login("agent-a", "/etc/hostname"), "tn-x-mgmt")


def test_a_missing_network_namespace_is_a_clear_error_at_once():
    store = open_store("etcd://198.18.0.1:2379?netns=tn-none-such")
    t0 = time.monotonic()
    with pytest.raises(StoreError, match="network namespace 'tn-none-such' does not exist"):
        store.get("/a")
    assert time.monotonic() - t0 < 1  # not retried as an outage


def test_a_connection_sends_small_writes_at_once():
    """Nagle's algorithm off: a request's body (http.client's second write) must not wait for
    the member's delayed ACK of its headers, 40 ms a request over a real link."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        with dial("127.0.0.1", server.getsockname()[1], 2.0) as sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _certificates(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA (the
    server's is a client certificate too: etcd's JSON gateway dials its own gRPC port with it)."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=tenet-test-ca",
             "-keyout", str(d / "ca-key.pem"), "-out", str(d / "ca.pem"))
    for name, ext in (("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth"), ("client", "extendedKeyUsage=clientAuth")):
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN=tenet-{name}", "-keyout", str(d / f"{name}-key.pem"),
                 "-out", str(d / f"{name}.csr"))
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.pem"), "-CAkey", str(d / "ca-key.pem"),
                 "-CAcreateserial", "-days", "1", "-extfile", str(d / f"{name}.ext"), "-out", str(d / f"{name}.pem"))


@needs_etcd
@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is needed to make test certificates")
def test_tls_with_a_client_certificate(tmp_path):
    """The URL's cacert/cert/key reach a member that requires client certificates; without the
    client certificate, or trusting another CA, the client fails at once with a TLS error."""
    _certificates(tmp_path)
    cluster = EtcdCluster(1, tls=tmp_path)
    try:
        port = cluster.client_ports[0]
        good = open_store(f"etcd://127.0.0.1:{port}?cacert={tmp_path}/ca.pem&cert={tmp_path}/client.pem&key={tmp_path}/client-key.pem")
        assert good.put("/tls", b"1") == 1 and good.get("/tls").value == b"1"
        good.close()
        with pytest.raises(StoreError, match="TLS"):
            EtcdStore([("127.0.0.1", port)], Tls(str(tmp_path / "ca.pem"))).get("/tls")  # no client certificate
        with pytest.raises(StoreError, match="TLS"):
            EtcdStore([("127.0.0.1", port)], Tls(str(tmp_path / "client.pem"), str(tmp_path / "client.pem"),
                                                  str(tmp_path / "client-key.pem"))).get("/tls")  # server not trusted
        with pytest.raises(StoreError):
            plain = EtcdStore([("127.0.0.1", port)], patience=0.5)
            plain.get("/tls")  # plain HTTP to a TLS member
    finally:
        cluster.stop()


def test_a_sqlite_store_from_before_leases_opens_and_keeps_its_keys(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript("""PRAGMA journal_mode=WAL;
        CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB, create_rev INTEGER, mod_rev INTEGER, version INTEGER);
        CREATE TABLE events (rev INTEGER, key TEXT, kind TEXT, value BLOB);
        CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER);
        INSERT INTO meta VALUES ('revision', 1), ('compacted', 0);
        INSERT INTO kv VALUES ('/old', X'31', 1, 1, 1);""")
    db.close()
    store = open_store(f"sqlite:///{path}")
    lease = store.grant(30)
    assert store.put("/new", b"2", lease=lease) == 2
    store.revoke(lease)
    assert [(kv.key, kv.value) for kv in store.range("/")] == [("/old", b"1")]
    store.close()


def test_a_range_larger_than_a_reply_comes_whole_and_in_order(url, monkeypatch):
    """etcd replies in pages (RANGE_PAGE keys, read at one revision); every backend returns all."""
    monkeypatch.setattr("tenet.store.etcd.RANGE_PAGE", 3)
    s = open_store(url)
    try:
        s.txn([], [Put(f"/big/k{i:02d}", b"v%d" % i) for i in range(10)])
        s.put("/bigger", b"not under /big/")
        assert [(kv.key, kv.value) for kv in s.range("/big/")] == [(f"/big/k{i:02d}", b"v%d" % i) for i in range(10)]
    finally:
        s.close()


def test_a_replay_larger_than_one_reply_comes_whole(store):
    """A watch from an old revision replays what was written since in batches of up to 1,000
    revisions; etcd fragments a batch larger than one reply (the leader after a full publish
    of a thousand hosts' tables replays far more than that)."""
    big = b"x" * 100_000
    start = store.revision() + 1
    for i in range(60):  # 6 MB: more than etcd's 1.5 MiB request limit, more than gRPC's 4 MiB reply
        store.put(f"/big/{i:02d}", big)
    got: list = []
    rev = start
    deadline = time.monotonic() + 30
    while len(got) < 60 and time.monotonic() < deadline:
        rev, events = follow(store, "/big/", rev, timeout=5)
        got += events or []
    assert [(e.key, len(e.value)) for e in got] == [(f"/big/{i:02d}", 100_000) for i in range(60)]
