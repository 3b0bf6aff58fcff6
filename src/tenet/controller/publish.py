"""One controller pass: read intent and allocations, compute, publish what changed.

Tables are full state stamped with a generation that increases only when content changes,
so agents can tell "nothing new" from "new" without deltas (Neutron l2pop's lesson).
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace

from tenet.compute.addressing import compute_tables, instances, with_hash
from tenet.compute.endpoints import Endpoint, declared_endpoints, reported_endpoints
from tenet.compute.extmac import Key, allocate
from tenet.compute.layers import with_carriers
from tenet.compute.routing import router_keys
from tenet.controller.fence import Fence, write
from tenet.controller.hold import Hold
from tenet.controller.liveness import Liveness
from tenet.controller.proxies import proxy_writes
from tenet.model.errors import IntentError
from tenet.model.tenancy import Intent
from tenet.store import keys
from tenet.store.intent import compose, read_stored
from tenet.store.records import EndpointReport, ExtMac, HostTables, RecordError
from tenet.store.base import Put, Store

log = logging.getLogger("tenet.controller")


_parsed: dict[tuple, Intent] = {}


def read_intent(store: Store) -> tuple[Intent, frozenset[str]] | None:
    """The composed intent (store/intent.py) and the registered hosts' names, from one read
    of the parts and chassis; the intent validated once per stored parts and registrations
    (endpoints churn far more often). Keyed by the values, not revisions: another store (a
    test's, a restarted one) may hold other parts at the same revisions. None: no fabric yet."""
    try:
        stored = read_stored(store)
    except IntentError:
        return None
    key = (stored.fabric.value, stored.tenancy.value if stored.tenancy else b"", tuple(c.to_json() for c in stored.chassis))
    if key not in _parsed:
        _parsed.clear()
        _parsed[key] = compose(stored)
    return _parsed[key], frozenset(c.host for c in stored.chassis)


def read_extmacs(store: Store) -> dict[Key, str]:
    out: dict[Key, str] = {}
    for kv in store.range(keys.extmac_prefix()):
        vn, vm, nic = kv.key[len(keys.extmac_prefix()) :].split("/")
        out[(vn, vm, int(nic))] = ExtMac.from_json(kv.value).mac
    return out


_reports: dict[bytes, EndpointReport] = {}


def read_reports(store: Store) -> list[EndpointReport]:
    """Every endpoint report, each parsed once while its value stays the same (under churn a
    pass reads them all, and only a few changed since the last)."""
    global _reports
    fresh: dict[bytes, EndpointReport] = {}
    for kv in store.range(keys.endpoints_prefix()):
        r = _reports.get(kv.value)
        if r is None:
            try:
                r = EndpointReport.from_json(kv.value)
            except RecordError as e:  # one bad report must not stop every host's tables
                log.error("%s ignored: %s", kv.key, e)
                continue
        fresh[kv.value] = r
    _reports = fresh
    return list(fresh.values())


def endpoints_of(intent: Intent, store: Store) -> tuple[Endpoint, ...]:
    """Declared endpoints plus those the agents admitted (NVO3 auto-attachment)."""
    reports = read_reports(store)
    declared = declared_endpoints(intent)
    return with_carriers(intent, declared + reported_endpoints(intent, reports, declared))


def alive_hosts(store: Store) -> frozenset[str]:
    return frozenset(kv.key[len(keys.alive_prefix()):] for kv in store.range(keys.alive_prefix()))


def publish(store: Store, hold: Hold | None = None, liveness: Liveness | None = None,
            fence: Fence | None = None) -> dict[str, HostTables]:
    """Recompute every host's tables; write only those whose content changed. With a `hold`,
    VN instances that lost their last endpoint stay for its time; with `liveness`, hosts
    down for longer than its grace leave their peers' tables (and keep their own). With a
    `fence`, every write holds only while that leader's term lasts (Deposed otherwise)."""
    read = read_intent(store)
    if read is None:
        return {}
    intent, registered = read
    endpoints = endpoints_of(intent, store)
    down = liveness.update(time.monotonic(), registered, alive_hosts(store)) if liveness else frozenset()
    if down:  # peers stop sending to them; their own tables stay as last published
        endpoints = tuple(ep for ep in endpoints if ep.host not in down)
    held = hold.update(time.monotonic(), instances(endpoints)) if hold is not None else frozenset()
    existing = read_extmacs(store)
    macs = allocate([ep.key for ep in endpoints] + router_keys(intent.vns, endpoints), existing)
    fresh = [Put(keys.extmac(vn, vm, nic), ExtMac(mac).to_json()) for (vn, vm, nic), mac in macs.items() if (vn, vm, nic) not in existing]
    if fresh:
        write(store, fresh, fence)
    published: dict[str, HostTables] = {}
    writes: list[Put] = []
    for host, tables in compute_tables(intent, endpoints, macs, held).items():
        if host in down:
            continue
        tables = with_hash(tables)
        kv = store.get(keys.tables(host))
        old = HostTables.from_json(kv.value) if kv else None
        if old and old.content_hash == tables.content_hash:
            published[host] = old
            continue
        tables = replace(tables, generation=(old.generation + 1) if old else 1)
        writes.append(Put(keys.tables(host), tables.to_json()))
        published[host] = tables
    writes += proxy_writes(store, intent)
    write(store, writes, fence)  # one commit for the hosts that changed, not one per host
    return published
