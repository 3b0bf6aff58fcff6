"""The 802.1X proxy's VM records: a copy kept fresh by a thread following the host's key in a
real store (SQLite, and etcd when it is installed), so a port appearing costs no store read."""
from __future__ import annotations

import select
import time
from contextlib import contextmanager

from tenet.agent.proxy8021x import Credentials
from tenet.agent.proxy_records import ProxyRecords, VmRecord
from tenet.store import keys
from tenet.store.base import StoreError
from tenet.store.open import open_store
from tenet.store.records import ProxyPort, ProxyPorts

HOST = "host6"
V = ProxyPort(port="tv1", mac="02:00:00:00:00:01", vn="n2", identity="vm-v", password="s3cret")
B = ProxyPort(port="tv2", mac="02:00:00:00:00:02", vn="n3", mab=True)


def publish(store, *ports: ProxyPort) -> None:
    store.put(keys.proxy(HOST), ProxyPorts(tuple(ports)).to_json())


class Deaf:
    """A store whose watch misses every event (a dropped watch stream): only reads tell."""

    def __init__(self, store) -> None:
        self.store = store

    def __getattr__(self, name):
        return getattr(self.store, name)

    def watch(self, prefix: str, start_revision: int, timeout: float):
        time.sleep(timeout)
        return []


@contextmanager
def following(url: str, resync: float, deaf: bool = False):
    """A started ProxyRecords on a client of its own (as the proxy has), stopped and closed after."""
    store = open_store(url)
    records = ProxyRecords(Deaf(store) if deaf else store, HOST, resync=resync).start()
    try:
        yield records
    finally:
        records.stop()
        store.close()


def woken(records: ProxyRecords, timeout: float) -> bool:
    return bool(select.select([records.wake], [], [], timeout)[0])


def until(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_the_records_are_read_when_made_so_a_restarted_proxy_starts_complete(store):
    publish(store, V, B)
    records = ProxyRecords(store, HOST)  # not started: the first read is the constructor's
    try:
        assert records.current == {"tv1": VmRecord(V.mac, "n2", Credentials("vm-v", "s3cret")),
                                   "tv2": VmRecord(B.mac, "n3", None)}
    finally:
        records.stop()


def test_a_change_is_followed_by_the_watch_and_wakes_the_loop(url):
    writer = open_store(url)
    with following(url, resync=60.0) as records:  # no resync within the test: the watch tells
        assert records.current == {}
        assert not woken(records, 0.2)  # nothing changed: no wake-up
        publish(writer, V)
        assert woken(records, 5.0)
        records.drain()
        assert records.current == {"tv1": VmRecord(V.mac, "n2", Credentials("vm-v", "s3cret"))}
        assert not woken(records, 0.0)  # drained
        publish(writer, V, B)
        assert woken(records, 5.0) and set(records.current) == {"tv1", "tv2"}
        records.drain()
        writer.delete(keys.proxy(HOST))  # the VMs went away (none published: none)
        assert until(lambda: records.current == {}, 5.0)
    writer.close()


def test_a_malformed_value_keeps_the_last_records(url):
    writer = open_store(url)
    publish(writer, V)
    with following(url, resync=60.0) as records:
        writer.put(keys.proxy(HOST), b'{"ports": [{"port": "tv9"}]}')
        publish(writer, V, B)  # a later good value is taken
        assert until(lambda: set(records.current) == {"tv1", "tv2"}, 5.0)
        writer.put(keys.proxy(HOST), b"not json")
        time.sleep(0.3)
        assert set(records.current) == {"tv1", "tv2"}
    writer.close()


def test_a_missed_event_is_healed_by_the_periodic_read(url):
    writer = open_store(url)
    with following(url, resync=0.2, deaf=True) as healing, following(url, resync=60.0, deaf=True) as deaf:
        publish(writer, V)
        assert woken(healing, 3.0) and set(healing.current) == {"tv1"}
        assert deaf.current == {}  # without the periodic read, a missed event would be missed for good
        assert healing.reads >= 2 and deaf.reads == 1
    writer.close()


class Flaky(Deaf):
    """A store that can be taken away: every call fails as an unreachable one does."""

    away = False

    def __getattr__(self, name):
        attr = getattr(self.store, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            if self.away:
                raise StoreError("no member answers")
            return attr(*args, **kwargs)
        return call

    def watch(self, prefix: str, start_revision: int, timeout: float):
        if self.away:
            raise StoreError("no member answers")
        return self.store.watch(prefix, start_revision, timeout)


def test_a_store_that_goes_away_leaves_the_last_records_then_is_read_again(url):
    writer, store = open_store(url), open_store(url)
    publish(writer, V)
    flaky = Flaky(store)
    records = ProxyRecords(flaky, HOST, resync=0.2).start()
    try:
        flaky.away = True
        time.sleep(0.5)  # the thread has met the failure: it keeps what it had
        assert set(records.current) == {"tv1"}
        publish(writer, V, B)
        flaky.away = False  # back: read again from scratch (level), whatever the watch missed
        assert until(lambda: set(records.current) == {"tv1", "tv2"}, 5.0)
    finally:
        records.stop()
        store.close()
        writer.close()
