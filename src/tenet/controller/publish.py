"""The leader's passes: from its inputs (inputs.py) to the stored tables, redoing only what changed.

A pass takes what changed since the last one — the intent, the live hosts, the VNs whose
endpoint reports changed — recomputes those VNs' members, hands the members of every VN to
the incremental tables (compute/incremental.py, equal to a full recompute by test), and
writes the tables of the (host, VN) instances that changed and the heads of their hosts
(store/published.py). Tables are full state stamped with a generation that increases only
when content changes, so agents tell "nothing new" from "new" without deltas (Neutron
l2pop's lesson); a periodic pass checks every host regardless (level-triggered).
"""
from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterable
from dataclasses import replace

from tenet.compute.endpoints import (
    Arrival, Endpoint, admitted_guards, arrivals, arriving, declared_endpoints, prestaged, reported_endpoints,
)
from tenet.compute.extmac import Allocator, Key
from tenet.compute.incremental import Tables
from tenet.compute.layers import with_carriers
from tenet.compute.port_security import Guarding
from tenet.compute.routing import router_key
from tenet.compute.tables import HostTables, Servable
from tenet.controller.fence import Fence, write
from tenet.controller.hold import Hold
from tenet.controller.inputs import Inputs
from tenet.controller.liveness import Liveness
from tenet.controller.proxies import proxy_writes
from tenet.model.tenancy import Intent
from tenet.store import keys
from tenet.store.base import Event, Op, Put, Store
from tenet.store.published import Publisher
from tenet.store.records import ExtMac, Servables, TablesHead

log = logging.getLogger("tenet.controller")


class Publication:
    """One leader's term of passes: its inputs, the tables as computed, what it published."""

    def __init__(self, store: Store, hold: Hold | None = None, liveness: Liveness | None = None,
                 fence: Fence | None = None) -> None:
        self.store, self.hold, self.liveness, self.fence = store, hold, liveness, fence
        self.inputs = Inputs.read(store)
        self.tables = Tables()
        self.publisher = Publisher()
        self.allocator = Allocator(self.inputs.extmacs)
        self.intent: Intent | None = None
        self.vns: set[str] = set()  # the intent's VN names
        self.layered = False  # the intent has VNs over VNs
        self.routed: set[str] = set()  # its IP-based VNs
        self.staged: frozenset[tuple[str, str]] = frozenset()  # instances live migrations need (compute/endpoints.py)
        self.coming: dict[tuple[str, str], Arrival] = {}  # where migrating admitted NICs arrive
        self.guards: dict[tuple[str, str], Guarding] = {}  # admitted NICs' declared port security
        self.declared: dict[str, tuple[Endpoint, ...]] = {}
        self.raw: dict[str, tuple[Endpoint, ...]] = {}  # per VN: declared and accepted reports
        self.members: dict[str, tuple[Endpoint, ...]] = {}  # per VN: what the tables are computed from
        self.down: frozenset[str] = frozenset()
        self.unwritten: set[str] = set()  # hosts whose stored tables are not yet as computed: changed while down, or behind our back
        self.servable: Servables | None = None

    @property
    def revision(self) -> int:
        """Every input written up to this revision is in the copy the next pass computes from."""
        return self.inputs.revision

    def feed(self, events: Iterable[Event] | None) -> bool:
        """Watch events (None: history compacted, read everything again). True: an input changed."""
        if events is None:
            self.inputs = Inputs.read(self.store)
            return True
        for e in events:  # tables someone else deleted or rewrote: written again next pass
            host = self.publisher.foreign(e)
            if host is not None:
                log.warning("%s: stored tables changed behind the controller's back (%s %s): rewriting",
                            host, e.kind, e.key)
                self.publisher.forget(host)
                self.unwritten.add(host)
        return self.inputs.apply(events) or bool(self.unwritten - self.down)

    def run(self, now: float, everything: bool = False) -> dict[str, TablesHead]:
        """One pass; returns the heads written. `everything`: check every host's tables
        against what is stored, not only those the changes reach."""
        intent_changed, report_vns = self.inputs.taken()
        intent = self.inputs.intent()
        if intent is None:
            return {}
        dirty = set(report_vns)
        if intent is not self.intent:
            self.publisher.load(self.store, [h.name for h in intent.fabric.hosts])  # hosts new to it
            grouped: dict[str, list[Endpoint]] = {}
            for ep in declared_endpoints(intent):
                grouped.setdefault(ep.vn, []).append(ep)
            declared = {vn: tuple(eps) for vn, eps in grouped.items()}
            vns = {v.name for v in intent.vns}
            # a VN's accepted reports depend on the VN existing and on its declared NICs alone
            dirty |= {vn for vn in vns | self.vns | declared.keys() | self.declared.keys()
                      if (vn in vns) != (vn in self.vns) or declared.get(vn, ()) != self.declared.get(vn, ())}
            self.intent, self.vns, self.declared, everything = intent, vns, declared, True
            self.layered = any(v.over for v in intent.vns)
            staged, self.staged = self.staged, prestaged(intent)
            coming, self.coming = self.coming, arrivals(intent)
            guards, self.guards = self.guards, admitted_guards(intent)
            dirty |= {vn for (vn, _), _ in set(guards.items()) ^ set(self.guards.items())}  # an admitted NIC's addresses
            dirty |= {vn for _, vn in staged ^ self.staged}  # a migration began, ended or changed course
            dirty |= {vn for (vn, mac) in coming.keys() | self.coming.keys() if coming.get((vn, mac)) != self.coming.get((vn, mac))}
            self.routed = {v.name for v in intent.vns if v.forwarding == "ip"}
        down = self.liveness.update(now, self.inputs.registered(), frozenset(self.inputs.alive)) \
            if self.liveness else frozenset()
        if down != self.down:
            dirty |= set(self.raw)
            self.down = down
        moved = self._members(intent, dirty)
        held = self.hold.update_vns(now, moved) if self.hold is not None else frozenset()
        held |= self.staged
        fresh = self._allocate(moved.keys())
        changed = self.tables.update(intent, self.members, self.allocator.macs, held, vns=moved.keys())
        hosts = set(self.tables.tables) if everything else \
            set(changed.hosts) | {h for h, _ in changed.instances} | (self.unwritten - down)
        self.unwritten = (self.unwritten | (hosts & down)) - (hosts - down)
        ops, pending = self.publisher.ops(self.tables.tables, hosts - down)
        if intent_changed or everything:
            ops += self._servable(intent) + proxy_writes(self.store, intent)
        # the new allocations in the same commit as the first tables naming them (one round trip
        # less), and chunks commit in order: no table is ever stored before its MACs
        allocations: list[Op] = [Put(keys.extmac(*k), ExtMac(mac).to_json()) for k, mac in sorted(fresh.items())]
        try:
            write(self.store, allocations + ops, self.fence)  # each host's VN tables before its head
        except BaseException:
            self.allocator.release(fresh)  # not stored: allocated afresh (and written) next time
            raise
        self.publisher.written(pending)
        if everything:  # what the tables hold lives on, and holds no cycles: spare the collector rescanning it
            gc.freeze()
        return pending.heads

    def _members(self, intent: Intent, dirty: set[str]) -> dict[str, frozenset[str]]:
        """Recompute the members of the `dirty` VNs; returns, per VN whose members may have
        changed, the hosts they are on now."""
        for vn in dirty:
            if vn not in self.vns:
                self.raw.pop(vn, None)
                continue
            declared = self.declared.get(vn, ())
            reports = list(self.inputs.reports.get(vn, {}).values())
            self.raw[vn] = arriving(declared + reported_endpoints(intent, reports, declared, self.coming, self.guards),
                                   self.coming)
        if self.layered:  # carriers join lower VNs: layered fabrics redo them all
            grouped: dict[str, list[Endpoint]] = {}
            for ep in with_carriers(intent, tuple(ep for eps in self.raw.values() for ep in eps)):
                grouped.setdefault(ep.vn, []).append(ep)
            fresh = {vn: tuple(eps) for vn, eps in grouped.items()}
            dirty = set(fresh) | set(self.members)
        else:
            fresh = self.raw
        moved = {}
        for vn in dirty:
            eps = fresh.get(vn, ())
            if self.down:
                eps = tuple(ep for ep in eps if ep.host not in self.down)
            if eps:
                if self.members.get(vn) != eps:
                    self.members[vn] = eps
            else:
                self.members.pop(vn, None)
            moved[vn] = frozenset(ep.host for ep in eps)
        return moved

    def _allocate(self, vns: Iterable[str]) -> dict[Key, str]:
        """External MACs for the members of these VNs that have none (and each routed VN's
        router MAC per member host): the new allocations, to be written with the tables."""
        wanted = []
        for vn in vns:
            members = self.members.get(vn, ())
            wanted += [ep.key for ep in members]
            if vn in self.routed:
                wanted += [router_key(vn, ep.host) for ep in members]
        return self.allocator.allocate(wanted)

    def _servable(self, intent: Intent) -> list[Op]:
        record = Servables(tuple(Servable(v.name, v.vnid) for v in intent.vns))
        if record == self.servable:
            return []
        kv = self.store.get(keys.servable())
        self.servable = record
        return [] if kv is not None and kv.value == record.to_json() else [Put(keys.servable(), record.to_json())]

    def published(self) -> dict[str, HostTables]:
        """Every host's tables as stored now (generation and digest from its head); down hosts'
        tables are not written, so they are left out."""
        out = {}
        for h, t in self.tables.tables.items():
            if h in self.down:
                continue
            head = self.publisher.head(h)
            if head is not None:
                out[h] = replace(t, serves=(), generation=head.generation, content_hash=head.content_hash)
        return out


def publish(store: Store, hold: Hold | None = None, liveness: Liveness | None = None,
            fence: Fence | None = None) -> dict[str, HostTables]:
    """One pass from scratch (tools, tests): read every input, compute every host's tables,
    write what differs from what is stored. The leader keeps a Publication instead."""
    p = Publication(store, hold, liveness, fence)
    p.run(time.monotonic(), everything=True)
    return p.published()
