"""The NVE's provisional rows: what it admitted itself, before the controller has answered.

An NVE that has just authorized a TES (NVO3) or a MAC (802.1X) knows enough to forward for it
at once: the VN, the port, the rates RADIUS granted, and — for a MAC it has served before —
the external MAC the controller gave it (allocations never change, compute/extmac.py). So the
agent keeps those admissions, and the peers' hints about theirs, as an *input* merged into the
published tables before `desired_state`: every pass, fast or periodic, computes the kernel
from `merge(tables, overlay)`, and nothing is applied outside the reconciler.

The published tables always win. A provisional row only ever adds what the tables lack, never
replaces a row (a TES claiming a declared MAC gets nothing early), and it goes when the tables
confirm it (any external MAC they chose), when the controller is known to have rejected it,
when admission withdraws it, or after a bounded time. Pure: no clock, no I/O.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from tenet.compute.addressing import local_row
from tenet.compute.endpoints import Endpoint
from tenet.compute.tables import Entry, Function, HostTables, ReverseEntry, VnTable

PROVISIONAL_TTL = 5.0  # seconds a row of our own may stand unconfirmed: the controller is away
HINT_TTL = 5.0  # seconds a peer's hint may stand unconfirmed (our clock: the sender's is not trusted)
EXTMAC_CACHE = 65536  # external MACs remembered from earlier tables, oldest forgotten first


@dataclass(frozen=True)
class Local:
    """A TES or MAC this NVE admitted: its row in the VN, and its external MAC if known."""

    endpoint: Endpoint
    ext: str  # "" when never allocated yet
    since: float
    reported: int = 0  # the store revision its report is in by (0: not yet written)


@dataclass(frozen=True)
class PeerHint:
    """A peer on our physical network says: in VN `vnid`, `internal` now wears `ext`."""

    vnid: int
    internal: str
    ext: str
    sender: str  # the peer's underlay address
    expires: float


def translating(t: VnTable) -> bool:
    """Members of this VN on another host of our network: frames between us carry external MACs."""
    return t.forwarding == "mac" and any(e.function is Function.TRANSLATE_L2 for e in t.entries)


def confirmed(t: VnTable, loc: Local) -> bool:
    """The tables hold the admitted MAC on the admitted port, whatever external MAC they gave it."""
    ep = loc.endpoint
    return any(e.destination == ep.mac and e.port == ep.port and e.function is Function.NO_MODIFICATION
               for e in t.entries)


def absorbed(t: VnTable, hint: PeerHint) -> bool:
    """The tables now name the hinted MAC or external MAC: the hint has nothing left to add."""
    return any(e.destination == hint.internal for e in t.entries) or any(r.arrival == hint.ext for r in t.reverse)


def merge(tables: HostTables, local: Iterable[Local], hints: Iterable[PeerHint],
          extmacs: Mapping[tuple[str, str], str] | None = None) -> tuple[HostTables, int]:
    """The tables with what the overlay may add, and how many rows it added. Only into a VN
    the tables already give this host with MAC forwarding (its bridge, tunnel and BUM rows
    exist: a cold VN waits for the controller), never over a MAC or external MAC the VN's
    table already names — but one it awaits here (a local reverse row with no entry: a live
    migration's destination, compute/addressing.py `moving_rows`) — and a translated VN's
    row only with its external MAC. A peer's hint
    makes a VN translated here as the controller will (its first member on another host of
    our network): our own members then answer to their external MACs (`extmacs`, remembered)."""
    by_vn: dict[str, list[Local]] = {}
    for loc in local:
        by_vn.setdefault(loc.endpoint.vn, []).append(loc)
    by_vnid: dict[int, list[PeerHint]] = {}
    for h in hints:
        by_vnid.setdefault(h.vnid, []).append(h)
    if not by_vn and not by_vnid:
        return tables, 0
    added, vns = 0, []
    for t in tables.vns:
        mine, theirs = by_vn.get(t.vn, ()), by_vnid.get(t.vnid, ())
        if t.forwarding != "mac" or not (mine or theirs):
            vns.append(t)
            continue
        here = {e.destination for e in t.entries}
        awaited = {r.internal: r.arrival for r in t.reverse if r.local and r.internal and r.internal not in here}
        macs = here | {r.internal for r in t.reverse if r.internal and r.internal not in awaited}
        arrivals = {r.arrival for r in t.reverse if r.internal not in awaited}
        entries, reverse = list(t.entries), list(t.reverse)
        translated = translating(t)
        for loc in sorted(mine, key=lambda x: x.endpoint.mac):
            mac = loc.endpoint.mac
            ext = awaited.get(mac) or loc.ext  # awaited here (a live migration's): the tables name its MAC
            if mac in macs or (translated and (not ext or ext in arrivals)):
                continue
            entries.append(local_row(loc.endpoint))
            if translated and mac not in awaited:
                reverse.append(ReverseEntry(ext, mac, True))
            if translated:
                arrivals.add(ext)
            macs.add(mac)
            added += 1
        peers = []
        for h in sorted(theirs, key=lambda x: x.internal):
            if h.internal not in macs and h.ext not in arrivals and h.ext not in {p.ext for p in peers}:
                peers.append(h)
        if peers:
            answering = {r.internal for r in reverse if r.local}
            known = extmacs or {}
            worn = [(known.get((t.vn, e.destination)), e.destination) for e in entries
                    if e.function is Function.NO_MODIFICATION and e.destination not in answering]
            fill = [ReverseEntry(ext, mac, True) for ext, mac in worn if ext and ext not in arrivals]
            if answering or fill:  # a host none of whose members answers to an external MAC accepts none
                reverse += fill
                for h in peers:
                    entries.append(Entry(h.internal, Function.TRANSLATE_L2, h.ext))
                    reverse.append(ReverseEntry(h.ext, h.internal, False))
                added += len(fill) + len(peers)
        changed = len(entries) > len(t.entries) or len(reverse) > len(t.reverse)
        vns.append(replace(t, entries=tuple(entries), reverse=tuple(reverse)) if changed else t)
    return (replace(tables, vns=tuple(vns)) if added else tables), added


def external_macs(tables: HostTables) -> dict[tuple[str, str], str]:
    """(VN, internal MAC) → external MAC, for every MAC the tables translate (ours and peers')."""
    out: dict[tuple[str, str], str] = {}
    for t in tables.vns:
        for r in t.reverse:
            if r.internal:
                out[t.vn, r.internal] = r.arrival
    return out


class Overlay:
    """The agent's provisional state: its admissions, the peers' hints and the external MACs
    it has seen. Not thread-safe: the agent holds its pass lock around every call."""

    def __init__(self) -> None:
        self.local: dict[tuple[str, str], Local] = {}
        self.hints: dict[tuple[int, str], PeerHint] = {}
        self.extmacs: dict[tuple[str, str], str] = {}

    def __len__(self) -> int:
        return len(self.local) + len(self.hints)

    def learn(self, tables: HostTables) -> None:
        """Remember the external MACs the tables show: a MAC that comes back wears its old one."""
        self.extmacs.update(external_macs(tables))
        while len(self.extmacs) > EXTMAC_CACHE:
            del self.extmacs[next(iter(self.extmacs))]

    def local_for(self, endpoint: Endpoint, now: float) -> Local:
        """Its provisional row, with the external MAC it wore before, if any."""
        return Local(endpoint, self.extmacs.get((endpoint.vn, endpoint.mac), ""), now)

    def add(self, loc: Local) -> None:
        self.local[loc.endpoint.vn, loc.endpoint.mac] = loc

    def admit(self, endpoint: Endpoint, now: float) -> Local:
        loc = self.local_for(endpoint, now)
        self.add(loc)
        return loc

    def reported(self, vn: str, mac: str, revision: int) -> None:
        if (loc := self.local.get((vn, mac))) is not None:
            self.local[vn, mac] = replace(loc, reported=revision)

    def withdraw(self, vn: str, mac: str) -> Local | None:
        return self.local.pop((vn, mac), None)

    def hint(self, h: PeerHint) -> None:
        self.hints[h.vnid, h.internal] = h

    def unhint(self, vnid: int, internal: str, sender: str) -> bool:
        """Only the peer that gave a hint takes it back."""
        if (h := self.hints.get((vnid, internal))) is None or h.sender != sender:
            return False
        del self.hints[vnid, internal]
        return True

    def settle(self, tables: HostTables, now: float) -> list[Local]:
        """Drop what the tables confirmed or absorbed and what outlived its time; the local
        rows that expired unconfirmed (the caller logs them: the controller did not answer)."""
        by_vn: Mapping[str, VnTable] = {t.vn: t for t in tables.vns}
        by_vnid: Mapping[int, VnTable] = {t.vnid: t for t in tables.vns}
        expired = []
        for key, loc in list(self.local.items()):
            t = by_vn.get(key[0])
            if t is not None and confirmed(t, loc):
                del self.local[key]
            elif now - loc.since > PROVISIONAL_TTL:
                del self.local[key]
                expired.append(loc)
        for key, h in list(self.hints.items()):
            t = by_vnid.get(h.vnid)
            if now >= h.expires or (t is not None and absorbed(t, h)):
                del self.hints[key]
        return expired
