"""The leader's copy of its inputs (controller/inputs.py), kept from its watch, equals a fresh
read of the store, and says what changed."""

from tenet.controller.inputs import Inputs
from tenet.store import keys
from tenet.store.base import follow
from tenet.store.records import Alive, EndpointKind, EndpointReport, ExtMac


def report(host, vn, mac):
    return EndpointReport(vn=vn, vnid=1, mac=mac, port="p", host=host, session=1, kind=EndpointKind.NVO3)


def same(a: Inputs, b: Inputs) -> bool:
    return (a.reports, a.extmacs, a.alive, set(a.chassis), a.fabric and a.fabric.value, a.tenancy and a.tenancy.value) == \
        (b.reports, b.extmacs, b.alive, set(b.chassis), b.fabric and b.fabric.value, b.tenancy and b.tenancy.value)


def test_kept_from_the_watch_equals_a_fresh_read(store):
    store.put(keys.fabric(), b"{}")
    store.put(keys.endpoint("h1", "v1", "m1"), report("h1", "v1", "m1").to_json())
    copy = Inputs.read(store)
    copy.taken()
    rev = copy.revision + 1
    store.put(keys.endpoint("h2", "v2", "m2"), report("h2", "v2", "m2").to_json())
    store.delete(keys.endpoint("h1", "v1", "m1"))
    store.put(keys.extmac("v2", "tes-m2", 0), ExtMac("06:74:6e:00:00:01").to_json())
    store.put(keys.alive("h2"), Alive(pid=1, since=0).to_json())
    store.put(keys.endpoint("h3", "v1", "m3"), b"not a report")  # logged and skipped, never fatal
    store.put(keys.status("h1"), b"{}")  # not an input
    rev, events = follow(store, keys.ROOT, rev, timeout=1)
    assert copy.apply(events)
    assert same(copy, Inputs.read(store))
    intent, vns = copy.taken()
    assert not intent and vns == {"v1", "v2"} and copy.alive == {"h2"}
    store.put(keys.status("h2"), b"{}")
    _, events = follow(store, keys.ROOT, rev, timeout=1)
    assert not copy.apply(events)  # only others' writes: no pass needed


def test_an_event_older_than_what_was_read_is_skipped(store):
    """A watch from before the read replays history the read already has: the copy keeps the newer value."""
    store.put(keys.endpoint("h1", "v1", "m1"), report("h1", "v1", "m1").to_json())
    start = store.revision()
    store.put(keys.endpoint("h1", "v1", "m1"), report("h1", "v1", "m1").to_json().replace(b'"port": "p"', b'"port": "q"'))
    copy = Inputs.read(store)
    _, events = follow(store, keys.ROOT, start, timeout=1)
    copy.apply(events)
    assert copy.reports["v1"][keys.endpoint("h1", "v1", "m1")].port == "q"
