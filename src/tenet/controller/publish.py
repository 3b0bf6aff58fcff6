"""One controller pass: read intent and allocations, compute, publish what changed.

Tables are full state stamped with a generation that increases only when content changes,
so agents can tell "nothing new" from "new" without deltas (Neutron l2pop's lesson).
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace

from tenet.compute.addressing import compute_tables, instances
from tenet.compute.endpoints import Endpoint, declared_endpoints, reported_endpoints
from tenet.compute.extmac import Key, allocate
from tenet.compute.layers import with_carriers
from tenet.compute.routing import router_keys
from tenet.controller.fence import Fence, write
from tenet.controller.hold import Hold
from tenet.controller.proxies import proxy_writes
from tenet.model.tenancy import Intent
from tenet.store import keys
from tenet.store.records import EndpointReport, ExtMac, HostTables, RecordError, intent_from_json
from tenet.store.base import Put, Store

log = logging.getLogger("tenet.controller")


_parsed: dict[bytes, Intent] = {}


def read_intent(store: Store) -> Intent | None:
    """The intent, validated once per stored value (endpoints churn far more often than intent).
    Keyed by the value, not its revision: another store (a test's, a restarted one) may hold
    another intent at the same revision."""
    kv = store.get(keys.intent())
    if kv is None:
        return None
    if kv.value not in _parsed:
        _parsed.clear()
        _parsed[kv.value] = intent_from_json(kv.value)
    return _parsed[kv.value]


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


def publish(store: Store, hold: Hold | None = None, fence: Fence | None = None) -> dict[str, HostTables]:
    """Recompute every host's tables; write only those whose content changed. With a `hold`,
    VN instances that lost their last endpoint stay for its time. With a `fence`, every write
    holds only while that leader's term lasts (Deposed otherwise)."""
    intent = read_intent(store)
    if intent is None:
        return {}
    endpoints = endpoints_of(intent, store)
    held = hold.update(time.monotonic(), instances(endpoints)) if hold is not None else frozenset()
    existing = read_extmacs(store)
    macs = allocate([ep.key for ep in endpoints] + router_keys(intent.vns, endpoints), existing)
    fresh = [Put(keys.extmac(vn, vm, nic), ExtMac(mac).to_json()) for (vn, vm, nic), mac in macs.items() if (vn, vm, nic) not in existing]
    if fresh:
        write(store, fresh, fence)
    published: dict[str, HostTables] = {}
    writes: list[Put] = []
    for host, tables in compute_tables(intent, endpoints, macs, held).items():
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
