"""The addressing tables kept up to date by change: only the VNs a change touches are
recomputed (OVN's incremental engine, with one node per VN). Pure.

After every `update`, `tables` equals compute_tables of the same inputs (the full recompute
stays the reference; tests/unit/test_incremental.py checks it after every step of random
change sequences). One function computes a VN's tables for both (addressing.vn_tables).

What a VN's tables depend on, and so what makes it dirty: its members; its definition and
those of the VNs beneath it (layer, carriers); the hosts its members or held instances are
on; its held instances; for a layered VN, the hosts' order (carrier addresses). External
MACs are not compared: an allocation never changes once made (compute/extmac.py), so a
member that did not change kept its MACs. A change this cannot attribute (the physical
networks or routers) recomputes everything.
"""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from tenet.compute.addressing import IntentIndex, full_collections_paused, held_by_vn, host_tables, vn_tables
from tenet.compute.endpoints import Endpoint
from tenet.compute.extmac import Key
from tenet.compute.qos import UplinkQos, uplinks_qos
from tenet.compute.tables import HostTables, VnTable
from tenet.model.tenancy import Intent

Instance = tuple[str, str]  # (host, VN)


@dataclass(frozen=True)
class Changed:
    """What an update changed, for publishing only those hosts."""

    hosts: frozenset[str]  # host-level fields, the set or order of its VNs, or added/removed
    instances: frozenset[Instance]  # (host, VN) whose VnTable changed, appeared or went
    removed_hosts: frozenset[str]


class Tables:
    """Every host's tables and the inputs they were computed from."""

    def __init__(self) -> None:
        self.tables: dict[str, HostTables] = {}
        self._intent: Intent | None = None
        self._ix: IntentIndex | None = None
        self._qos: dict[str, UplinkQos | None] = {}
        self._members: dict[str, tuple[Endpoint, ...]] = {}
        self._held: frozenset[Instance] = frozenset()
        self._keep: dict[str, list[str]] = {}
        self._by_vn: dict[str, dict[str, VnTable]] = {}  # VN -> host -> its table there
        self._on: dict[str, dict[str, VnTable]] = {}  # host -> VN -> table (hosts of the fabric)
        self._member_vns: dict[str, set[str]] = {}  # host (in the fabric or not) -> VNs with a member there

    def update(self, intent: Intent, members: Mapping[str, tuple[Endpoint, ...]], extmacs: Mapping[Key, str],
               held: frozenset[Instance], vns: Collection[str] | None = None) -> Changed:
        """Bring `tables` to these inputs. `members`: each VN's endpoints (carriers included),
        the same tuple object for a VN that did not change (compared by identity first).
        `vns`: the only VNs whose members may differ from the last update (None: any may) —
        at 10,000 VNs, comparing every VN's members costs more than the change itself."""
        with full_collections_paused():
            return self._update(intent, members, extmacs, held, vns)

    def _update(self, intent: Intent, members: Mapping[str, tuple[Endpoint, ...]], extmacs: Mapping[Key, str],
                held: frozenset[Instance], vns: Collection[str] | None) -> Changed:
        dirty: set[str] = set()
        touched: set[str] = set()  # hosts whose HostTables are rebuilt
        if intent is not self._intent:
            dirty, touched = self._intent_changed(intent, held)
        for name in (members.keys() | self._members.keys()) if vns is None else vns:
            old, new = self._members.get(name, ()), members.get(name, ())
            if old is not new and old != new:
                dirty.add(name)
                self._index_members(name, old, new)
            if new:
                self._members[name] = new
            else:
                self._members.pop(name, None)
        if held is not self._held and held != self._held:
            dirty.update(vn for _, vn in held ^ self._held)
            self._held, self._keep = held, held_by_vn(held)
        instances: set[Instance] = set()
        for name in dirty:
            instances |= self._recompute(name, members.get(name, ()), extmacs)
        touched.update(h for h, _ in instances)
        return self._rebuild(touched, frozenset(instances))

    def _intent_changed(self, intent: Intent, held: frozenset[Instance]) -> tuple[set[str], set[str]]:
        """The VNs and hosts a new intent makes dirty (everything, when unattributable)."""
        ix, was, before = IntentIndex.of(intent), self._ix, self._intent
        qos = uplinks_qos(intent)
        touched = {h for h in ix.hosts if h not in self._qos or qos[h] != self._qos[h]}
        self._intent, self._ix, self._qos = intent, ix, qos
        if was is None or before is None or (intent.fabric.networks, intent.fabric.routers) != (
                before.fabric.networks, before.fabric.routers):
            return set(ix.vns) | set(self._by_vn), touched | set(ix.hosts) | set(self.tables)
        moved = {h for h in ix.hosts.keys() | was.hosts.keys() if ix.hosts.get(h) != was.hosts.get(h)}
        touched |= moved
        dirty = {vn for h in moved for vn in (*self._member_vns.get(h, ()), *self._on.get(h, ()))}
        dirty.update(vn for h, vn in held if h in moved)
        if list(ix.position) != list(was.position):  # carrier addresses follow the hosts' order
            dirty.update(n for n, v in ix.vns.items() if v.over)
        redefined = {n for n in ix.vns.keys() | was.vns.keys() if ix.vns.get(n) != was.vns.get(n)}
        dirty |= redefined
        dirty.update(n for at in (ix, was) for n in at.vns if redefined & beneath(at, n))
        if ix.serves != was.serves:  # every host offers every VN, in the intent's order
            touched |= set(ix.hosts) | set(self.tables)
        return dirty, touched

    def _index_members(self, name: str, old: tuple[Endpoint, ...], new: tuple[Endpoint, ...]) -> None:
        was, now = {e.host for e in old}, {e.host for e in new}
        for h in was - now:
            self._member_vns[h].discard(name)
        for h in now - was:
            self._member_vns.setdefault(h, set()).add(name)

    def _recompute(self, name: str, members: tuple[Endpoint, ...], extmacs: Mapping[Key, str]) -> set[Instance]:
        """One VN's tables on every host implementing it now or before; the instances that
        differ (an equal table keeps its old object, so unchanged hosts share it)."""
        assert self._ix is not None
        vn = self._ix.vns.get(name)
        new = vn_tables(self._ix, vn, members, extmacs, self._keep.get(name, ())) if vn else {}
        old = self._by_vn.pop(name, {})
        changed = set()
        for h in old.keys() - new.keys():
            changed.add((h, name))
            self._on.get(h, {}).pop(name, None)
        for h, t in new.items():
            o = old.get(h)
            if o is not None and (o is t or o == t):
                new[h] = o
                continue
            changed.add((h, name))
            self._on.setdefault(h, {})[name] = t
        if new:
            self._by_vn[name] = new
        return changed

    def _rebuild(self, touched: set[str], instances: frozenset[Instance]) -> Changed:
        assert self._ix is not None
        hosts, removed = set(), set()
        for h in touched:
            old = self.tables.get(h)
            if h not in self._ix.hosts:
                self._on.pop(h, None)
                if self.tables.pop(h, None) is not None:
                    removed.add(h)
                continue
            order = self._ix.order
            vns = sorted(self._on.get(h, {}).values(), key=lambda t: order[t.vn])
            new = self.tables[h] = host_tables(self._ix, h, vns, self._qos[h])
            if old is None or head(old) != head(new):
                hosts.add(h)
        return Changed(frozenset(hosts | removed), instances, frozenset(removed))


def head(t: HostTables) -> tuple:
    """A host's own fields and the VNs it lists: what changes it beyond its VN instances."""
    return (t.underlay_ip, t.uplink, t.role, t.capability, t.mab, t.qos, t.serves, tuple(v.vn for v in t.vns))


def beneath(ix: IntentIndex, name: str) -> set[str]:
    """The VNs a VN is layered over, transitively (its layer and carriers depend on them)."""
    out: set[str] = set()
    vn = ix.vns.get(name)
    while vn is not None and vn.over and vn.over not in out:
        out.add(vn.over)
        vn = ix.vns.get(vn.over)
    return out
