"""The leader's copy of its inputs, kept current by the watch it already holds.

A pass that read every input from the store would cost as much as the fabric is large — a
range of 100,000 endpoint reports to learn that one changed. Instead the inputs are read
once (at the start of a term, or after the watch's history was compacted) and then kept up to
date from the watch's events, which carry the new values (OVN's IDL replica does the same).
Each change also records what it touched: the intent (fabric, tenancy, registrations), the
VNs whose endpoint reports changed, the set of live hosts — so a pass redoes only that.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from tenet.compute.extmac import Key
from tenet.model.errors import IntentError
from tenet.model.tenancy import Intent
from tenet.store import keys
from tenet.store.base import Event, KeyValue, Store
from tenet.store.intent import Stored, compose
from tenet.store.records import Chassis, EndpointReport, ExtMac, RecordError

log = logging.getLogger("tenet.controller")

PREFIXES = (keys.fabric(), keys.tenancy(), keys.chassis_prefix(), keys.alive_prefix(), keys.endpoints_prefix(),
            keys.extmac_prefix())


@dataclass
class Inputs:
    """Everything a pass computes from, as of `revision` (every event up to it applied)."""

    revision: int = 0
    fabric: KeyValue | None = None
    tenancy: KeyValue | None = None
    chassis: dict[str, KeyValue] = field(default_factory=dict)
    alive: set[str] = field(default_factory=set)
    reports: dict[str, dict[str, EndpointReport]] = field(default_factory=dict)  # VN -> key -> report
    extmacs: dict[Key, str] = field(default_factory=dict)
    # what changed since the last pass took them (taken())
    intent_changed: bool = True
    report_vns: set[str] = field(default_factory=set)
    _mods: dict[str, int] = field(default_factory=dict)  # key -> mod revision of what we hold
    _vn_of: dict[str, str] = field(default_factory=dict)  # report key -> its VN
    _compose: bool = True  # the intent's parts changed since it was last composed
    _intent: Intent | None = None
    _invalid: IntentError | None = None

    @classmethod
    def read(cls, store: Store) -> Inputs:
        """Read every input. Watch from the returned `revision` + 1: events replayed from there
        that are older than a value read are skipped, so the copy converges either way."""
        inputs = cls(revision=store.revision())
        for prefix in PREFIXES:
            for kv in store.range(prefix):
                inputs._put(kv.key, kv.value, kv.mod_revision, kv.create_revision)
        return inputs

    def apply(self, events: Iterable[Event]) -> bool:
        """Apply watch events in order; True if any of them is an input."""
        touched = False
        for e in events:
            self.revision = max(self.revision, e.revision)
            if not e.key.startswith(PREFIXES) or self._mods.get(e.key, 0) > e.revision:
                continue
            touched |= not e.key.startswith(keys.extmac_prefix())  # the leader's own allocations need no pass
            if e.kind == "put" and e.value is not None:
                self._put(e.key, e.value, e.revision, e.revision)
            else:
                self._delete(e.key, e.revision)
        return touched

    def _put(self, key: str, value: bytes, mod: int, create: int) -> None:
        self._mods[key] = mod
        if key == keys.fabric():
            self.fabric = KeyValue(key, value, mod, create, 0)
            self._intent_part()
        elif key == keys.tenancy():
            self.tenancy = KeyValue(key, value, mod, create, 0)
            self._intent_part()
        elif key.startswith(keys.chassis_prefix()):
            old = self.chassis.get(key)
            self.chassis[key] = KeyValue(key, value, mod, old.create_revision if old else create, 0)
            self._intent_part()
        elif key.startswith(keys.alive_prefix()):
            self.alive.add(key[len(keys.alive_prefix()):])
        elif key.startswith(keys.endpoints_prefix()):
            self._drop_report(key)
            try:
                r = EndpointReport.from_json(value)
            except RecordError as e:  # one bad report must not stop every host's tables
                log.error("%s ignored: %s", key, e)
                return
            self.reports.setdefault(r.vn, {})[key] = r
            self._vn_of[key] = r.vn
            self.report_vns.add(r.vn)
        elif key.startswith(keys.extmac_prefix()):
            vn, vm, nic = key[len(keys.extmac_prefix()):].split("/")
            try:
                self.extmacs[(vn, vm, int(nic))] = ExtMac.from_json(value).mac
            except (RecordError, ValueError) as e:
                log.error("%s ignored: %s", key, e)

    def _delete(self, key: str, rev: int) -> None:
        self._mods[key] = rev
        if key == keys.fabric():
            self.fabric = None
            self._intent_part()
        elif key == keys.tenancy():
            self.tenancy = None
            self._intent_part()
        elif key.startswith(keys.chassis_prefix()):
            if self.chassis.pop(key, None) is not None:
                self._intent_part()
        elif key.startswith(keys.alive_prefix()):
            self.alive.discard(key[len(keys.alive_prefix()):])
        elif key.startswith(keys.endpoints_prefix()):
            self._drop_report(key)
        elif key.startswith(keys.extmac_prefix()):
            vn, vm, nic = key[len(keys.extmac_prefix()):].split("/")
            self.extmacs.pop((vn, vm, int(nic)), None)

    def _intent_part(self) -> None:
        self.intent_changed = self._compose = True

    def _drop_report(self, key: str) -> None:
        vn = self._vn_of.pop(key, None)
        if vn is not None:
            rs = self.reports[vn]
            del rs[key]
            if not rs:
                del self.reports[vn]
            self.report_vns.add(vn)

    def intent(self) -> Intent | None:
        """The composed intent (validated once per change of its parts); None: no fabric yet.
        IntentError, every time until the parts change: they do not fit (the last tables stay)."""
        if self._compose:
            self._intent, self._invalid, self._compose = None, None, False
            if self.fabric is not None:
                chassis = []
                for kv in sorted(self.chassis.values(), key=lambda kv: kv.create_revision):
                    try:
                        chassis.append(Chassis.from_json(kv.value))
                    except RecordError as e:
                        log.error("%s ignored: %s", kv.key, e)
                try:
                    self._intent = compose(Stored(self.fabric, self.tenancy, tuple(chassis)))
                except IntentError as e:
                    self._invalid = e
        if self._invalid is not None:
            raise self._invalid
        return self._intent

    def registered(self) -> frozenset[str]:
        return frozenset(k[len(keys.chassis_prefix()):] for k in self.chassis)

    def taken(self) -> tuple[bool, set[str]]:
        """What changed since the last call: the intent, and the VNs whose reports changed.
        (Live hosts need no flag: every pass asks the liveness clock.)"""
        out = (self.intent_changed, self.report_vns)
        self.intent_changed, self.report_vns = False, set()
        return out
