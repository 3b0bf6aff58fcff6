"""The stored layout of a host's tables (store/published.py): per (host, VN) keys and a head,
written only where content changed, read back whole, and never half-read mid-publish."""
from dataclasses import replace
from pathlib import Path

import pytest

from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints
from tenet.compute.extmac import allocate
from tenet.compute.tables import TablesError, vn_to_json
from tenet.model.load import load_file
from tenet.store import keys, published
from tenet.store.base import Delete, Event, Put, follow
from tenet.store.published import Publisher, Reader

EXAMPLE = Path(__file__).parents[2] / "examples" / "datacenter.yaml"


@pytest.fixture
def tables():
    intent = load_file(EXAMPLE)
    eps = declared_endpoints(intent)
    return compute_tables(intent, eps, allocate([e.key for e in eps], {}))


def publish(store, publisher, tables, hosts=None):
    ops, pending = publisher.ops(tables, hosts if hosts is not None else tables)
    for i in range(0, len(ops), 100):
        store.txn([], ops[i:i + 100])
    publisher.written(pending)
    return ops


def test_written_whole_and_read_back_equal(store, tables):
    ops = publish(store, Publisher(), tables)
    assert sum(isinstance(o, Put) and o.key.count("/") == 5 for o in ops) == sum(len(t.vns) for t in tables.values())
    for h, t in tables.items():
        back = published.read(store, h)
        assert back == replace(t, serves=(), generation=1)
        assert back.content_hash  # the head's digest: what an agent reports having applied


def test_unchanged_writes_nothing_and_one_vn_changes_one_key_and_its_head(store, tables):
    p = Publisher()
    publish(store, p, tables)
    assert publish(store, p, tables) == []
    assert publish(store, _loaded(store, tables), tables) == []  # a new leader: nothing to rewrite
    host = "host2"
    t = tables[host]
    vn = t.vns[0]
    changed = replace(t, vns=(replace(vn, entries=vn.entries[:-1]), *t.vns[1:]))
    ops = publish(store, p, {**tables, host: changed})
    assert [o.key for o in ops] == [keys.vn_tables(host, vn.vn), keys.tables(host)]
    assert published.read(store, host).generation == 2
    assert published.read(store, "host1").generation == 1
    gone = replace(changed, vns=changed.vns[1:])
    ops = publish(store, p, {**tables, host: gone})
    assert ops[0] == Delete(keys.vn_tables(host, vn.vn)) and ops[-1].key == keys.tables(host)
    assert [v.vn for v in published.read(store, host).vns] == [v.vn for v in gone.vns]


def _loaded(store, tables):
    """A new leader: knows nothing but what is stored."""
    p = Publisher()
    p.load(store, tables)
    return p


def test_reader_decodes_only_what_changed(store, tables):
    p = Publisher()
    publish(store, p, tables)
    r = Reader("host2")
    first = r.read(store)
    t = tables["host2"]
    vn = t.vns[-1]
    publish(store, p, {**tables, "host2": replace(t, vns=(*t.vns[:-1], replace(vn, entries=vn.entries[:1])))})
    second = r.read(store)
    assert second.vns[-1].entries == vn.entries[:1]
    assert all(a is b for a, b in zip(first.vns[:-1], second.vns[:-1]))  # the same decoded objects


def test_a_read_mid_publish_waits_and_a_torn_store_is_an_error(store, tables):
    p = Publisher()
    publish(store, p, tables)
    t = tables["host2"]
    vn = t.vns[0]
    torn = replace(vn, entries=vn.entries[:1])
    store.put(keys.vn_tables("host2", vn.vn), vn_to_json(torn))  # the VN table written, its head not yet
    with pytest.raises(TablesError, match="do not match their head"):
        Reader("host2").read(store)
    publish(store, _loaded(store, tables), {**tables, "host2": replace(t, vns=(torn, *t.vns[1:]))})
    assert Reader("host2").read(store).vns[0] == torn


def test_nothing_published_reads_none(store):
    assert published.read(store, "nobody") is None


class Counted:
    """The real store, counting the reads made through it."""

    def __init__(self, store):
        self.store, self.reads = store, 0

    def get(self, key):
        self.reads += 1
        return self.store.get(key)

    def range(self, prefix):
        self.reads += 1
        return self.store.range(prefix)

    def revision(self):
        self.reads += 1
        return self.store.revision()


def _shrunk(t, k=0):
    """The host's tables with VN table k cut to one row."""
    vn = t.vns[k]
    return replace(t, vns=(*t.vns[:k], replace(vn, entries=vn.entries[:1]), *t.vns[k + 1:]))


def test_a_reader_takes_what_the_watch_carried_without_reading(store, tables):
    r, events = _read_then(store, tables, lambda p: publish(store, p, {**tables, "host2": _shrunk(tables["host2"])}))
    counted = Counted(store)
    carried = r.read(counted, events)
    assert counted.reads == 0
    assert carried == Reader("host2").read(store) and carried.generation == 2
    assert r.read(counted, []) is carried and counted.reads == 0  # the watch said nothing changed


def test_a_carried_head_older_than_the_read_is_ignored(store, tables):
    p = Publisher()
    publish(store, p, tables)
    rev = store.revision() + 1
    publish(store, p, {**tables, "host2": _shrunk(tables["host2"])})
    _, events = follow(store, published.prefix("host2"), rev, 5.0)  # generation 2's
    publish(store, p, {**tables, "host2": _shrunk(tables["host2"], 1)})
    r = Reader("host2")
    now = r.read(store)  # generation 3, read after the watch's events were made
    assert now.generation == 3
    assert r.read(store, events) is now  # not taken back to generation 2


def _read_then(store, tables, change):
    """A reader of host2 that has read the published tables, and the events of `change` after."""
    p = Publisher()
    publish(store, p, tables)
    r = Reader("host2")
    r.read(store)
    rev = store.revision() + 1
    change(p)
    return r, follow(store, published.prefix("host2"), rev, 5.0)[1]


def test_a_carried_head_missing_a_table_reads_it_and_a_wrong_value_is_not_taken(store, tables):
    r, events = _read_then(store, tables, lambda p: publish(store, p, {**tables, "host2": _shrunk(tables["host2"])}))
    heads = [e for e in events if e.key == keys.tables("host2")]
    vn = tables["host2"].vns[0].vn
    wrong = Event("put", keys.vn_tables("host2", vn), vn_to_json(tables["host2"].vns[0]), heads[0].revision)
    counted = Counted(store)
    got = r.read(counted, [wrong, *heads])  # the table the head names is not among them: read
    assert counted.reads > 0
    assert got == Reader("host2").read(store) and got.vns[0].entries == tables["host2"].vns[0].entries[:1]


def test_a_carried_head_deletion_reads_none(store, tables):
    r, events = _read_then(store, tables, lambda p: store.txn([], [Delete(keys.tables("host2"))]))
    assert r.read(Counted(store), events) is None
