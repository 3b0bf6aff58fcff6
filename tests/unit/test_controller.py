"""The controller publishes full state with generations; external MACs survive restarts."""
import json
import time

from tenet.controller.hold import Hold, carried_over
from tenet.controller.publish import publish
from tenet.model.load import intent_to_doc, load_file
from tenet.store import keys, published
from tenet.store.base import MAX_TXN_OPS, Put, in_chunks
from tenet.store.open import open_store
from tenet.store.intent import write_intent

from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "datacenter.yaml"


def put_doc(store, doc) -> None:
    """A whole document as an operator's tools store it: its two parts, unvalidated."""
    from tenet.model.parts import split
    fabric, tenancy = split(doc)
    store.put(keys.fabric(), json.dumps(fabric).encode())
    store.put(keys.tenancy(), json.dumps(tenancy).encode())


def seeded(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    intent = load_file(EXAMPLE)
    write_intent(store, intent)
    return store, intent


def test_publish_writes_every_host_once(tmp_path):
    store, intent = seeded(tmp_path)
    first = publish(store)
    assert set(first) == {h.name for h in intent.fabric.hosts}
    assert all(t.generation == 1 for t in first.values())
    rev = store.revision()
    again = publish(store)  # nothing changed: no write, same generation
    assert store.revision() == rev and again == first


def test_change_bumps_generation_only_where_content_changed(tmp_path):
    store, intent = seeded(tmp_path)
    publish(store)
    doc = intent_to_doc(intent)
    doc["vms"]["L"]["host"] = "host1"  # migrate L (N6) from host3 to host1
    put_doc(store, doc)
    out = publish(store)
    assert out["host3"].generation == 2 and out["host3"].vn("N6") is None
    assert out["host1"].generation == 2 and out["host1"].vn("N6") is not None
    assert out["host2"].generation == 1


def test_external_macs_stable_across_controller_restart(tmp_path):
    store, _ = seeded(tmp_path)
    before = publish(store)
    store.close()
    reopened = open_store(f"sqlite:///{tmp_path / 's.db'}")
    reopened.txn([], [])  # a new controller process: nothing in memory
    after = publish(reopened)
    assert {h: t.content_hash for h, t in after.items()} == {h: t.content_hash for h, t in before.items()}
    stored = published.read(reopened, "host2")
    assert stored == before["host2"]


def test_bad_intent_keeps_published_tables(tmp_path):
    store, _ = seeded(tmp_path)
    publish(store)
    store.put(keys.fabric(), b'{"name": "x"}')
    try:
        publish(store)
    except Exception as e:
        assert "problem" in str(e)
    assert published.read(store, "host2").generation == 1


def test_a_vn_instance_outlives_its_last_endpoint_by_the_hold(tmp_path):
    store, intent = seeded(tmp_path)
    hold = Hold(0.2)
    publish(store, hold)
    doc = intent_to_doc(intent)
    doc["vms"]["L"]["host"] = "host1"  # N6's only endpoint on host3 leaves
    put_doc(store, doc)
    held = publish(store, hold)["host3"].vn("N6")
    assert held is not None and not [e for e in held.entries if e.port]  # kept, with no local member
    assert publish(store, hold)["host3"].vn("N6") is not None  # a pass inside the hold keeps it
    time.sleep(0.25)
    assert publish(store, hold)["host3"].vn("N6") is None


def test_an_endpoint_back_within_the_hold_cancels_it():
    hold = Hold(2.0)
    a, b = ("h1", "n1"), ("h2", "n1")
    assert hold.update(0.0, frozenset({a, b})) == frozenset()
    assert hold.update(1.0, frozenset({b})) == {a} and hold.next_due() == 3.0
    assert hold.update(1.5, frozenset({a, b})) == frozenset() and hold.next_due() is None  # back: no hold
    assert hold.update(2.0, frozenset({b})) == {a}  # left again: a fresh hold from now
    assert hold.update(3.9, frozenset({b})) == {a}
    assert hold.update(4.0, frozenset({b})) == frozenset()


def test_without_a_hold_the_instance_goes_at_once(tmp_path):
    store, intent = seeded(tmp_path)
    hold = Hold(0.0)
    publish(store, hold)
    doc = intent_to_doc(intent)
    doc["vms"]["L"]["host"] = "host1"
    put_doc(store, doc)
    assert publish(store, hold)["host3"].vn("N6") is None


def test_writes_beyond_etcds_transaction_limit_go_in_chunks(tmp_path):
    """etcd refuses more than 128 operations in one transaction: reports and tables never ask it to."""
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    seen: list[int] = []
    real = store.txn
    store.txn = lambda compares, ops, *a: (seen.append(len(ops)), real(compares, ops, *a))[1]
    in_chunks(store, [Put(f"/k/{i:03d}", b"v") for i in range(250)])
    assert seen == [MAX_TXN_OPS, MAX_TXN_OPS, 50] and max(seen) <= 128
    assert len(store.range("/k/")) == 250


def test_a_malformed_endpoint_report_is_ignored_not_fatal(tmp_path, caplog):
    """One agent's bad value must not stop every host's tables (it is logged, by key)."""
    from tenet.store.records import EndpointReport

    store, intent = seeded(tmp_path)
    vn = intent.vns[0].name
    host = next(h.name for h in intent.fabric.hosts if not h.switch)
    good = EndpointReport(vn=vn, vnid=intent.vns[0].vnid, mac="02:12:34:56:78:9a", port="tv-tes", host=host, session=7)
    store.put(keys.endpoint(host, vn, good.mac), good.to_json())
    store.put(keys.endpoint(host, vn, "02:00:00:00:00:ff"), b'{"vn": "x"}')
    published = publish(store)
    assert set(published) == {h.name for h in intent.fabric.hosts}
    assert any(e.destination == good.mac for t in published[host].vns for e in t.entries)
    assert "02:00:00:00:00:ff" in caplog.text and "endpoint report.vnid: missing" in caplog.text


def test_a_new_leader_holds_what_its_predecessor_published(tmp_path):
    """A failover right after an instance lost its last endpoint: the new leader counts the
    published instances as present, so it holds that one from now instead of dropping it."""
    store, intent = seeded(tmp_path)
    published = publish(store, Hold(2.0))
    doc = intent_to_doc(intent)
    doc["vms"]["L"]["host"] = "host1"  # N6's only endpoint on host3 leaves, and the leader dies
    put_doc(store, doc)
    inherited = carried_over(2.0, published.values())
    assert publish(store, inherited)["host3"].vn("N6") is not None
    assert ("host3", "N6") in inherited.until
    assert Hold(2.0).update(0.0, inherited.present) == frozenset()  # remembering nothing: dropped at once


def test_a_leaders_passes_leave_the_store_as_a_full_recompute_would(tmp_path):
    """Each step changes the store as operators and agents do; the leader's pass, fed by its
    watch, redoes only what the step reaches. A fresh controller computing everything from
    scratch then finds nothing to write: the incremental passes stored exactly the full result."""
    from tenet.controller.publish import Publication
    from tenet.store.base import follow
    from tenet.store.intent import edit_intent
    from tenet.store.records import EndpointKind, EndpointReport

    store, _ = seeded(tmp_path)
    leader = Publication(store, Hold(0.0))
    leader.run(time.monotonic(), everything=True)
    rev = leader.revision + 1
    report = EndpointReport(vn="N4", vnid=5004, mac="02:00:00:00:44:01", port="tnx1", host="host4", session=1,
                            kind=EndpointKind.NVO3)
    same_mac = EndpointReport(vn="N4", vnid=5004, mac="02:00:00:00:44:01", port="tnx2", host="host2", session=2,
                              kind=EndpointKind.NVO3)

    def vm(doc, name, **spec):
        doc["vms"][name] = {"host": spec.pop("host"), "nics": [spec]}

    def drop_vn(doc, name):
        del doc["networks"][name]
        doc["vms"] = {k: v for k, v in doc["vms"].items() if all(n["network"] != name for n in v["nics"])}

    steps = [
        lambda: store.put(keys.endpoint("host4", "N4", report.mac), report.to_json()),
        lambda: store.put(keys.endpoint("host2", "N4", same_mac.mac), same_mac.to_json()),  # the MAC is taken: ignored
        lambda: edit_intent(store, lambda d: vm(d, "Z", host="host2", network="N6", ip="10.6.0.99/24")),
        lambda: store.delete(keys.endpoint("host4", "N4", report.mac)),  # now host2's report is accepted
        lambda: edit_intent(store, lambda d: drop_vn(d, "N3")),
        lambda: edit_intent(store, lambda d: d["networks"].__setitem__("N7", {"vnid": 5007, "bum": "replicate"})),
        lambda: edit_intent(store, lambda d: vm(d, "Y", host="host5", network="N7")),
        lambda: edit_intent(store, lambda d: d["vms"].pop("H")),
    ]
    for i, step in enumerate(steps):
        step()
        rev, events = follow(store, keys.ROOT, rev, timeout=1)
        assert leader.feed(events)
        leader.run(time.monotonic())
        rev, events = follow(store, keys.ROOT, rev, timeout=0)  # its own writes
        leader.feed(events)
        at = store.revision()
        Publication(store, Hold(0.0)).run(time.monotonic(), everything=True)
        assert store.revision() == at, f"step {i}: a full recompute rewrote what the leader's pass left"
    assert "02:00:00:00:44:01" in {e.destination for v in published.read(store, "host5").vns for e in v.entries}


def test_tables_changed_behind_the_leaders_back_are_written_again(tmp_path):
    """Level-triggered toward the store too: a table key deleted or a head overwritten by
    anyone else shows in the leader's watch, and its next pass rewrites that host whole."""
    from tenet.controller.publish import Publication
    from tenet.store.base import follow

    store, _ = seeded(tmp_path)
    leader = Publication(store, Hold(0.0))
    leader.run(time.monotonic(), everything=True)
    rev = leader.revision + 1
    rev, events = follow(store, keys.ROOT, rev, timeout=0)
    assert not leader.feed(events)  # its own writes: nothing foreign
    before = {h: published.read(store, h) for h in ("host2", "host3")}
    vn = before["host2"].vns[0].vn
    store.delete(keys.vn_tables("host2", vn))
    store.put(keys.tables("host3"), store.get(keys.tables("host1")).value)
    rev, events = follow(store, keys.ROOT, rev, timeout=1)
    assert leader.feed(events)
    leader.run(time.monotonic())
    for h, was in before.items():
        now = published.read(store, h)
        assert now.vns == was.vns and now.host == h and now.generation > was.generation
