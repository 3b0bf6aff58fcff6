"""A host's published tables as the store holds them: one key per VN table and a head.

Why not one document per host: a host's tables list every destination of every VN it
implements, so at 100 endpoints per host one document is hundreds of kilobytes, and a TES
attaching anywhere would rewrite it whole on every host of its VN. Per (host, VN) a change
writes only the tables of that VN, on the hosts that implement it, plus each such host's head
(its generation and the digest of every VN table it holds). What every host needs alike —
the VNs it may offer a discovering TES — is one key, /tenet/servable.

The head is written after the VN tables it names (store/base.in_chunks keeps the order). A
reader that finds a VN table whose digest is not the head's has read between two commits of
one publish: it reads again (the rest is on its way), and reports TablesError if the store
stays that way (a publisher that died mid-publish: the next leader rewrites it).

Every reader of a host's tables (its agent and admission, the lab, the CLI, benchmarks) goes
through Reader, which decodes only the VN tables whose digest changed since its last read. A
watcher hands it the events its watch returned: their values are the new head and VN tables,
so a change costs no read at all when the watch carried all of it (a VN table is taken only
if its digest is the one the head names, so an old or torn value is never used; anything
missing is read as before).
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tenet.compute.tables import HostTables, Servable, TablesError, VnTable, vn_from_json, vn_to_json
from tenet.store import keys
from tenet.store.base import Delete, Event, Op, Put, Store
from tenet.store.records import RecordError, Servables, TablesHead, VnDigest

FEW = 4  # changed VN tables read one by one up to this many; more: one range read
SETTLE = (0.001, 0.005, 0.02, 0.05)  # pauses before reading again, while a publish is mid-way


def prefix(host: str) -> str:
    """Every key of the host's tables starts with this (watch it)."""
    return keys.tables(host)


def digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()[:16]


def head_of(tables: HostTables, vns: Iterable[VnDigest], generation: int) -> TablesHead:
    """The head for `tables`, whose VN tables are stored with digests `vns`; its content hash
    covers every field but the generation."""
    vns = tuple(vns)
    body = repr((tables.host, tables.underlay_ip, tables.uplink, tables.role, tables.capability, tables.mab,
                 tables.qos, tuple((v.vn, v.digest) for v in vns)))
    return TablesHead(host=tables.host, underlay_ip=tables.underlay_ip, uplink=tables.uplink, role=tables.role,
                      capability=tables.capability, mab=tables.mab, qos=tables.qos, vns=vns, generation=generation,
                      content_hash=digest(body.encode()))


class Publisher:
    """The controller's memory of what it published: per host its head, per (host, VN) the
    table object it last encoded and that encoding's digest, so an unchanged table object
    costs a lookup, not a serialisation."""

    def __init__(self) -> None:
        self.heads: dict[str, TablesHead] = {}
        self.encoded: dict[str, dict[str, tuple[VnTable, str]]] = {}  # host -> VN -> (table, digest)
        self.stored: dict[str, HostTables] = {}  # host -> the tables object its stored head was checked against

    def load(self, store: Store, hosts: Iterable[str]) -> None:
        """Start from what is stored for the `hosts` not known yet (a new leader continues its
        predecessor's generations; an unreadable head is as good as none: it is rewritten)."""
        for h in [h for h in hosts if h not in self.heads]:
            kv = store.get(keys.tables(h))
            if kv is not None:
                try:
                    self.heads[h] = TablesHead.from_json(kv.value)
                except RecordError:
                    pass

    def ops(self, tables: Mapping[str, HostTables], hosts: Iterable[str]) -> tuple[list[Op], Pending]:
        """The writes that make the stored tables of `hosts` equal to `tables` (each host's
        VN tables before its head; a host absent from `tables` is left as stored), and what
        to remember once they are committed (written())."""
        out: list[Op] = []
        pending = Pending({}, {}, {})
        for h in sorted(set(hosts)):
            t = tables.get(h)
            if t is None or (self.stored.get(h) is t and h in self.heads):
                continue  # the very tables object stored last time: nothing in it can differ
            pending.stored[h] = t
            old = self.heads.get(h)
            before = {v.vn: v.digest for v in old.vns} if old else {}
            digests = []
            for vt in t.vns:
                seen = self.encoded.get(h, {}).get(vt.vn)
                if seen is not None and seen[0] is vt:
                    d = seen[1]
                else:
                    value = vn_to_json(vt)
                    d = digest(value)
                    pending.encoded.setdefault(h, {})[vt.vn] = (vt, d)
                    if before.get(vt.vn) != d:
                        out.append(Put(keys.vn_tables(h, vt.vn), value))
                digests.append(VnDigest(vt.vn, d))
            gone = set(before) - {vt.vn for vt in t.vns}
            out += [Delete(keys.vn_tables(h, vn)) for vn in sorted(gone)]
            head = head_of(t, digests, (old.generation if old else 0) + 1)
            if old is not None and old.content_hash == head.content_hash:
                continue
            out.append(Put(keys.tables(h), head.to_json()))
            pending.heads[h] = head
        return out, pending

    def written(self, pending: Pending) -> None:
        """The ops returned with `pending` are committed: remember them. (Until then nothing is
        remembered, so ops that failed are computed again in full next time.)"""
        self.heads.update(pending.heads)
        self.stored.update(pending.stored)
        for h, fresh in pending.encoded.items():
            self.encoded.setdefault(h, {}).update(fresh)
        for h, head in pending.heads.items():
            keep = {v.vn for v in head.vns}
            mine = self.encoded.get(h, {})
            for vn in [vn for vn in mine if vn not in keep]:
                del mine[vn]

    def foreign(self, event: Event) -> str | None:
        """The host whose stored tables `event` shows differ from what this publisher wrote
        (a key deleted or rewritten by someone else), or None. Its own writes come back as
        events too, after written() recorded them: those match."""
        if not event.key.startswith(keys.hosts_prefix()):
            return None
        head, _, vn = event.key.partition("/tables/")
        host = keys.tables_host(head + "/tables" if vn else event.key)
        mine = self.heads.get(host) if host else None
        if mine is None:
            return None
        if not vn:
            return None if event.value == mine.to_json() else host
        want = next((v.digest for v in mine.vns if v.vn == vn), None)
        if event.value is None:
            return host if want is not None else None
        return None if want == digest(event.value) else host

    def forget(self, host: str) -> None:
        """What is stored for `host` is not what this publisher wrote: its next ops rewrite
        every VN table and the head (the generation goes on from the one it knew)."""
        head = self.heads.get(host)
        if head is not None:
            self.heads[host] = TablesHead(**{**vars(head), "vns": (), "content_hash": ""})
        self.encoded.pop(host, None)
        self.stored.pop(host, None)

    def head(self, host: str) -> TablesHead | None:
        return self.heads.get(host)


@dataclass(frozen=True)
class Pending:
    """What a publish will have stored once its writes commit."""

    heads: dict[str, TablesHead]
    encoded: dict[str, dict[str, tuple[VnTable, str]]]
    stored: dict[str, HostTables]


def read_servable(store: Store) -> tuple[Servable, ...]:
    kv = store.get(keys.servable())
    return Servables.from_json(kv.value).vns if kv else ()


def _head(value: bytes) -> TablesHead:
    try:
        return TablesHead.from_json(value)
    except RecordError as e:
        raise TablesError(str(e)) from None


class Reader:
    """One host's tables read back whole, decoding only what changed since the last read."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.cache: dict[str, tuple[str, VnTable]] = {}
        self.head_key, self.vn_prefix = keys.tables(host), keys.vn_tables_prefix(host)
        self.head_revision = 0  # the store revision of the head the last result was built from
        self.last: HostTables | None = None
        self.known = False  # `last` is a result (None included: nothing published)
        self.carried: dict[str, bytes] = {}  # VN -> a table value a watch carried, not yet named by a head

    def read(self, store: Store, events: list[Event] | None = None) -> HostTables | None:
        """The host's tables, or None before the controller first published them.
        `events`: what the caller's watch of prefix() returned since the last read (None:
        unknown, read the store); when they carry the new head and every VN table it names
        that is not decoded yet, nothing is read. TablesError: malformed, or mid-publish for
        longer than SETTLE allows."""
        if events is not None and self.known:
            head = self._carry(events)
            if head is None:  # no newer head: the tables are as last returned
                return self.last
            if head.value is None:
                return self._result(None, head.revision)
            carried = _head(head.value)
            if self._fetch(None, carried):
                return self._result(carried, head.revision)
        for pause in (*SETTLE, None):
            kv = store.get(self.head_key)
            if kv is None:  # a head event from before this read is older than its absence
                return self._result(None, store.revision())
            head = _head(kv.value)
            if self._fetch(store, head):
                return self._result(head, kv.mod_revision)
            if pause is None:
                break
            time.sleep(pause)
        raise TablesError(f"{self.host}: the stored VN tables do not match their head (generation {head.generation})")

    def _carry(self, events: list[Event]) -> Event | None:
        """Keep the VN table values `events` carry; the newest head event newer than the last
        result's head, if any."""
        head = None
        for e in events:
            if e.key == self.head_key:
                if e.revision > self.head_revision and (head is None or e.revision >= head.revision):
                    head = e
            elif e.key.startswith(self.vn_prefix):
                vn = e.key[len(self.vn_prefix):]
                if e.value is None:
                    self.carried.pop(vn, None)
                else:
                    self.carried[vn] = e.value
        return head

    def _result(self, head: TablesHead | None, revision: int) -> HostTables | None:
        self.head_revision, self.known = revision, True
        if head is None:
            self.carried = {}
            self.last = None
            return None
        vns = tuple(self.cache[v.vn][1] for v in head.vns)
        self.cache = {v.vn: self.cache[v.vn] for v in head.vns}
        self.carried = {}  # the rest is older than this head, or of a later one: that one is read if need be
        self.last = HostTables(host=head.host, underlay_ip=head.underlay_ip, uplink=head.uplink, vns=vns,
                               role=head.role, capability=head.capability, mab=head.mab, qos=head.qos,
                               generation=head.generation, content_hash=head.content_hash)
        return self.last

    def _fetch(self, store: Store | None, head: TablesHead) -> bool:
        """Decode the VN tables the cache lacks, from what a watch carried or else from the
        store (None: carried values only); False when one is not what the head names."""
        stale = [v for v in head.vns if self.cache.get(v.vn, ("",))[0] != v.digest]
        if not stale:
            return True
        missing = []
        for v in stale:
            value = self.carried.get(v.vn)
            if value is not None and digest(value) == v.digest:
                self.cache[v.vn] = (v.digest, vn_from_json(value))
            else:
                missing.append(v)
        stale = missing
        if not stale:
            return True
        if store is None:
            return False
        if len(stale) > FEW:
            stored = {kv.key: kv.value for kv in store.range(self.vn_prefix)}
            values = {v.vn: stored.get(keys.vn_tables(self.host, v.vn)) for v in stale}
        else:
            values = {v.vn: (kv.value if (kv := store.get(keys.vn_tables(self.host, v.vn))) else None) for v in stale}
        for v in stale:
            value = values[v.vn]
            if value is None or digest(value) != v.digest:
                return False
            self.cache[v.vn] = (v.digest, vn_from_json(value))
        return True


def read(store: Store, host: str) -> HostTables | None:
    """The host's tables, or None before the controller first published them. A malformed
    value raises ValueError naming the field (records.TablesError)."""
    return Reader(host).read(store)
