"""Isolation and reachability over every host's published tables. Pure.

Three questions, each answered from the tables (and the intent, for what belongs to which VN):
no entry of any host delivers a VN's frame into another VN; every endpoint of a VN reaches
every other one, unicast and broadcast (by compute/trace.py, so what the kernels will do);
every reverse entry answers a forward one. Each finding names the host, the VN and the entry.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum

from tenet.compute.endpoints import declared_endpoints
from tenet.compute.routing import DELIVER
from tenet.compute.tables import Entry, Function, ReverseEntry, VnTable
from tenet.compute.trace import BROADCAST_MAC, Snapshot, World, walk
from tenet.compute.trace_steps import Deliver, Drop, Lookup, Source, describe
from tenet.model.tenancy import Join, port_name


class FindingKind(str, Enum):
    CROSS_VN = "delivers into another VN"
    UNREACHABLE = "unreachable"
    FLOODED = "reached by no row"  # only unknown-unicast flooding delivers it: a row is missing
    ORPHAN_REVERSE = "reverse entry without a forward one"


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    host: str
    vn: str
    entry: str  # the offending row, as `tenet tables` would show it
    detail: str

    def to_dict(self) -> dict:
        return {"kind": self.kind.value, "host": self.host, "vn": self.vn, "entry": self.entry, "detail": self.detail}


def verify(snap: Snapshot) -> tuple[Finding, ...]:
    """Every finding, isolation first, each once, in a stable order."""
    w = World(snap)
    found = [*_vnis(w), *_ports(w), *_external_macs(w), *_reverse(w), *_declared(w), *_reachability(w)]
    return tuple(dict.fromkeys(found))


def row_text(e: Entry) -> str:
    dest = "broadcast" if e.function in (Function.MULTICAST, Function.REPLICATE) else e.destination
    port = f" port {e.port}" if e.port else ""
    return f"{dest} → {e.function.value} {e.address}{port}"


def reverse_text(r: ReverseEntry) -> str:
    if not r.internal:
        return f"reverse {r.arrival}"
    return f"reverse {r.arrival} → {r.internal} ({'local' if r.local else 'from peer'})"


def _tables(w: World) -> Iterator[tuple[str, VnTable]]:
    for h, ht in sorted(w.tables.items()):
        for t in ht.vns:
            yield h, t


def _vnis(w: World) -> Iterator[Finding]:
    """A VNI names one VN: in the intent, on each host, and in its reverse table."""
    declared = {v.name: v.vnid for v in w.snap.intent.vns}
    for h, ht in sorted(w.tables.items()):
        seen: dict[int, str] = {}
        for t in ht.vns:
            if t.vn in declared and declared[t.vn] != t.vnid:
                yield Finding(FindingKind.CROSS_VN, h, t.vn, f"VNI {t.vnid}",
                              f"VN {t.vn} is VNI {declared[t.vn]} in the intent: {h} sends and takes VNI {t.vnid}")
            if t.vnid in seen:
                yield Finding(FindingKind.CROSS_VN, h, t.vn, f"VNI {t.vnid}",
                              f"VNs {seen[t.vnid]} and {t.vn} share VNI {t.vnid} on {h}")
            seen.setdefault(t.vnid, t.vn)
            for r in t.reverse:
                if not r.internal and r.arrival != f"vni {t.vnid}":
                    yield Finding(FindingKind.CROSS_VN, h, t.vn, reverse_text(r),
                                  f"takes {r.arrival} into VN {t.vn} (VNI {t.vnid})")


def _ports(w: World) -> Iterator[Finding]:
    """A port belongs to one NIC, of one VN: the intent's, and one VN table's per host."""
    nic_vn = {port_name(v.name, i): n.network for v in w.snap.intent.vms for i, n in enumerate(v.nics)
              if n.join is Join.STATIC}
    for h, ht in sorted(w.tables.items()):
        owner: dict[str, str] = {}
        for t in ht.vns:
            locals_ = [(e.port, row_text(e)) for e in t.rows(Function.NO_MODIFICATION) if e.port]
            locals_ += [(r.port, f"route {r.prefix} → deliver {r.address} port {r.port}") for r in t.routes if r.port]
            for port, text in locals_:
                if port in nic_vn and nic_vn[port] != t.vn:
                    yield Finding(FindingKind.CROSS_VN, h, t.vn, text,
                                  f"port {port} is a NIC of VN {nic_vn[port]}: VN {t.vn}'s frames would reach it")
                if owner.setdefault(port, t.vn) != t.vn:
                    yield Finding(FindingKind.CROSS_VN, h, t.vn, text, f"port {port} is in VN {owner[port]} too")


def _external_macs(w: World) -> Iterator[Finding]:
    """An external MAC is worn by one NIC of one VN (its local reverse rows say which): a row
    of another VN translating to it, or taking it back, crosses tenants on the wire."""
    wearer: dict[str, set[tuple[str, str]]] = {}
    for _, t in _tables(w):
        for r in t.reverse:
            if r.internal and r.local:
                wearer.setdefault(r.arrival, set()).add((t.vn, r.internal))
    for h, t in _tables(w):
        for e in t.rows(Function.TRANSLATE_L2):
            for vn, mac in sorted(wearer.get(e.address, ())):
                if vn != t.vn:
                    yield Finding(FindingKind.CROSS_VN, h, t.vn, row_text(e),
                                  f"{e.address} is worn by {mac} of VN {vn}")
        for r in t.reverse:
            for vn, mac in sorted(wearer.get(r.arrival, ()) if r.internal else ()):
                if vn != t.vn:
                    yield Finding(FindingKind.CROSS_VN, h, t.vn, reverse_text(r),
                                  f"{r.arrival} is worn by {mac} of VN {vn}: its frames would enter VN {t.vn}")


def _reverse(w: World) -> Iterator[Finding]:
    """A reverse row (external MAC -> internal) answers a forward one: some host of the VN
    translates that MAC to that external MAC, or — while its NIC migrates, when peers reach it
    by VXLAN — the NIC still wears it (a local row where it is; a peer's row where it is not)."""
    forward = {(t.vn, e.destination, e.address) for _, t in _tables(w) for e in t.rows(Function.TRANSLATE_L2)}
    worn = {(t.vn, r.internal, r.arrival) for _, t in _tables(w) for r in t.reverse if r.internal and r.local}
    for h, t in _tables(w):
        here = {e.destination for e in t.rows(Function.NO_MODIFICATION)}
        for r in t.reverse:
            if not r.internal or (t.vn, r.internal, r.arrival) in forward:
                continue
            if (r.local and r.internal in here) or (not r.local and (t.vn, r.internal, r.arrival) in worn):
                continue
            yield Finding(FindingKind.ORPHAN_REVERSE, h, t.vn, reverse_text(r),
                          f"no host of VN {t.vn} translates {r.internal} to {r.arrival}")


def _declared(w: World) -> Iterator[Finding]:
    """A running VM's declared NIC is a local TES of its VN somewhere."""
    for ep in declared_endpoints(w.snap.intent):
        if not w.sources(ep.vn, ep.mac):
            yield Finding(FindingKind.UNREACHABLE, ep.host, ep.vn, f"{ep.vm} NIC {ep.nic} ({ep.mac})",
                          "no host's table has it as a local TES: nothing reaches it")


def endpoints(w: World, t: VnTable, host: str) -> list[tuple[Source, str]]:
    """The VN's local TESs on `host` as trace sources, with the IP a routed VN reaches them by."""
    if t.forwarding == "ip":
        return [(Source(w.vm_of(t, r.address), 0, r.address, t.vn, t.vnid, host, r.port, "ip"), r.prefix.split("/")[0])
                for r in t.routes if r.function == DELIVER]
    return [(Source(e.vm, 0, e.destination, t.vn, t.vnid, host, e.port), "") for e in t.rows(Function.NO_MODIFICATION)]


def _reachability(w: World) -> Iterator[Finding]:
    members: dict[str, list[tuple[Source, str]]] = {}
    for h, t in _tables(w):
        members.setdefault(t.vn, []).extend(endpoints(w, t, h))
    for vn, eps in sorted(members.items()):
        for src, _ in eps:
            for dst, ip in eps:
                if dst.mac == src.mac:
                    continue
                steps = walk(w, src, ip=ip) if ip else walk(w, src, mac=dst.mac)
                yield from _crossing(src, steps)
                pair = f"{src.vm or src.mac} → {dst.vm or dst.mac}"
                if not any(isinstance(s, Deliver) and s.vn == vn and s.mac == dst.mac for s in steps):
                    yield Finding(FindingKind.UNREACHABLE, src.host, vn, pair, _why(steps, f"{dst.mac} on {dst.host}"))
                elif any(isinstance(s, Lookup) and s.unknown for s in steps):
                    lookup = next(s for s in steps if isinstance(s, Lookup))
                    yield Finding(FindingKind.FLOODED, src.host, vn, pair, lookup.note)
            if src.forwarding == "mac":
                steps = walk(w, src, mac=BROADCAST_MAC)
                yield from _crossing(src, steps)
                got = {s.mac for s in steps if isinstance(s, Deliver) and s.vn == vn}
                for dst, _ in eps:
                    if dst.mac != src.mac and dst.mac not in got:
                        yield Finding(FindingKind.UNREACHABLE, src.host, vn,
                                      f"{src.vm or src.mac} → broadcast", _why(steps, f"{dst.mac} on {dst.host}"))


def _crossing(src: Source, steps: list) -> Iterator[Finding]:
    for s in steps:
        if isinstance(s, Deliver) and s.vn != src.vn:
            yield Finding(FindingKind.CROSS_VN, src.host, src.vn, f"{src.vm or src.mac} → {s.mac}",
                          f"delivered into VN {s.vn} on {s.host} port {s.port}")


def _why(steps: list, what: str) -> str:
    drops = [describe(s) for s in steps if isinstance(s, Drop)]
    return f"never reaches {what}" + (f": {drops[0]}" if drops else "")
