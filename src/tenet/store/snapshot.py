"""What `tenet trace` and `tenet verify` read (compute/trace.py `Snapshot`): the intent, every
host's published tables, and the IPs attached TESs reported. One pass over the store, read-only."""
from __future__ import annotations

from tenet.compute.trace import Snapshot
from tenet.store import keys, published
from tenet.store.base import Store
from tenet.store.intent import read_intent
from tenet.store.records import EndpointReport, RecordError


def read_snapshot(store: Store) -> Snapshot:
    """IntentError when the store holds no intent; TablesError (ValueError) for a malformed
    table. A host with no tables yet is simply absent (it implements nothing)."""
    intent = read_intent(store)
    tables = {}
    for h in intent.fabric.hosts:
        t = published.read(store, h.name)
        if t is not None:
            tables[h.name] = t
    addresses = {}
    for kv in store.range(keys.endpoints_prefix()):
        try:
            r = EndpointReport.from_json(kv.value)
        except RecordError:
            continue  # not ours to judge here: the controller logs it
        if r.ip:
            addresses[(r.vn, r.ip.split("/")[0])] = r.mac
    return Snapshot(intent, tables, addresses)
