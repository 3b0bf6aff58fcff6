"""The agent's fast lane: a TES or MAC forwards as soon as its NVE has authorized it.

Admission (a child process) tells the agent what it admitted over a unix datagram socket in
the host's network namespace, at the moment it queues the endpoint report for the store; the
fast lane adds it to the provisional overlay (provisional.py) and runs a pass at once, and
tells the peers on the uplink's own network the new external MAC in a UDP hint (wire/hint.py)
so that they accept it without waiting for their tables. The controller's tables then settle
every provisional row: confirmed, corrected, or — if the controller is known to have passed
over the report — withdrawn, which this lane looks for while rows stand unconfirmed.
The kernel's link events wake it too: a port its tables name that comes or goes (a VM
plugged, a live migration's port handed in or out) is taken or let go in a pass at once.

Trust: a notice comes only from this namespace (an abstract unix socket is per network
namespace, like the admission shards' own, shards.py). A hint is taken only on the uplink
from an address of the uplink's subnet, for a MAC-forwarding VN this host has, never over a
row the tables have, capped and short-lived: the physical network is what L2 translation already
trusts (any host on it can send frames wearing a peer's external MAC).
"""
from __future__ import annotations

import ipaddress
import logging
import select
import socket
import struct
import threading
import time
from collections import deque
from typing import Protocol

from tenet.agent.kernel.linkdump import link_changes, link_events
from tenet.agent.kernel.netlink import ipv4_address
from tenet.agent.notice import Admitted, Notice, Reported, Withdrawn, decode_notice, notice_address
from tenet.agent.provisional import HINT_TTL, PROVISIONAL_TTL, Local, Overlay, PeerHint, confirmed, merge, translating
from tenet.compute.endpoints import report_endpoint
from tenet.compute.tables import Function, HostTables, VnTable
from tenet.pace import Pacer
from tenet.trace import trace
from tenet.store import keys, published
from tenet.store.base import Store, StoreError
from tenet.store.observed import through
from tenet.store.open import open_store
from tenet.store.records import RecordError
from tenet.wire import hint as wire
from tenet.wire.errors import DecodeError

log = logging.getLogger("tenet.fast")

SETTLE_LOOK = 0.05  # while rows stand unconfirmed, how often the lane looks at them
REJECT_LOOK = 0.1  # an unconfirmed row this old is checked against the controller's progress
HINT_MAX = 256  # peers' hints held at once; more wait for the tables
FAST_DUTY = 2.0  # a pass costs twice its CPU time in gap under a storm (admission needs the cores) …
FAST_BURST = 0.05  # … once the banked quiet time is spent
STORM_WINDOW = 0.1  # more than STORM_ADMITS admissions within this many seconds are a storm: …
STORM_ADMITS = 10  # … the central way batches them into one commit and pass, and every early one would
# cost a pass here and on every peer (on 2 shared cores, 15% of the admission rate at 50/s)
GROUPS_EVERY = 1.0  # how often the lane re-joins the groups its multicast VNs' hints come to
_PKTINFO = struct.Struct("@I4s4s")  # struct in_pktinfo: ifindex, spec_dst, addr
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)  # Linux's value; Python names it from 3.12 only


class Agent(Protocol):
    """What the lane needs of the agent (agent/main.py): its passes and what they share."""

    host: str
    lock: threading.Lock
    overlay: Overlay
    tables: HostTables | None

    def pass_(self, store: Store, events: list | None, full: bool, fast: bool = False) -> tuple: ...


def hint_targets(t: VnTable, network: ipaddress.IPv4Network) -> tuple[str, ...]:
    """Where a hint for VN `t` goes: its multicast group, or the replication peers on our own
    network (a peer behind a router sees our frames encapsulated, not translated)."""
    if t.group:
        return (t.group,)
    return tuple(sorted(p for e in t.rows(Function.REPLICATE) for p in e.peers
                        if ipaddress.ip_address(p) in network))


class FastLane:
    """One thread in the agent process: notices and hints in, passes and hints out."""

    def __init__(self, agent: Agent, store_url: str, uplink: str) -> None:
        self.agent, self.store_url, self.uplink = agent, store_url, uplink
        self.stopping = threading.Event()
        self.notices = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notices.bind(notice_address(agent.host))
        self.hints = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.hints.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.hints.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        self.hints.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        self.hints.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        self.hints.bind(("0.0.0.0", wire.HINT_PORT))
        self.links = link_events()
        self.present: dict[str, bool] = {}  # named ports as the link events last showed them
        self.named: tuple[HostTables | None, frozenset[str]] = (None, frozenset())
        self.seq = int(time.time() * 1000) & 0xFFFFFFFF  # a restarted sender starts above its last
        self.seen: dict[str, tuple[int, float]] = {}  # sender -> (last seq, when)
        self.announced: dict[tuple[str, str], tuple[int, str]] = {}  # (vn, mac) -> (vnid, ext) we hinted
        self.groups: set[str] = set()
        self.groups_at = 0.0
        # the uplink's network and index, looked up off the path (a netlink socket costs ms)
        self.network: ipaddress.IPv4Network | None = None
        self.index = 0
        self.store: Store | None = None
        # sparse admissions pass at once; a storm's are coalesced, at most a third of a core
        self.pacer = Pacer(0.0, FAST_DUTY, FAST_BURST)
        self.recent: deque[float] = deque()  # when the admissions of the last STORM_WINDOW came
        self.thread = threading.Thread(target=self._run, name="fast-lane", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=2)
        self.notices.close()
        self.hints.close()
        self.links.close()

    # -- the kernel's link events ---------------------------------------------------------

    def _links(self) -> bool:
        """Whether a port the tables name came or went (a VM plugged, or its port handed in
        or out by a live migration): a pass now, not at the main loop's next look."""
        tables = self.agent.tables
        if self.named[0] is not tables:
            self.named = (tables, frozenset(e.port for t in tables.vns for e in t.entries if e.port)
                          | frozenset(r.port for t in tables.vns for r in t.routes if r.port) if tables else frozenset())
        flipped = False
        while True:
            try:
                data = self.links.recv(1 << 16)
            except BlockingIOError:
                return flipped
            except OSError as e:  # ENOBUFS: events were lost; look anyway
                log.debug("fast lane: link events overran: %s", e)
                return True
            for name, present in link_changes(data):
                if name in self.named[1] and self.present.get(name) != present:
                    self.present[name] = present
                    flipped = True

    # -- the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._once()
            except StoreError as e:  # the main loop says so too; the overlay waits
                log.debug("fast lane: store unreachable: %s", e)
                self.store = None
                self.stopping.wait(1.0)
            except Exception:  # never let the lane die: the central path still works without it
                log.exception("fast lane pass failed")
                self.stopping.wait(0.1)

    def _once(self) -> None:
        wait = SETTLE_LOOK if len(self.agent.overlay) else GROUPS_EVERY
        ready, _, _ = select.select([self.notices, self.hints, self.links], [], [], wait)
        if ready:  # under a storm, what arrives while the pacer holds us joins this pass
            self.pacer.pace()
        now = time.monotonic()
        changed = False
        if self.notices in ready:
            changed |= self._notices(now)
        if self.hints in ready:
            changed |= self._hints(now)
        if self.links in ready:
            changed |= self._links()
        changed |= self._settle(now)
        if changed:
            trace("fast-pass")
            _, ops = self.agent.pass_(self._store(), [], False, fast=True)
            trace("fast-applied", str(len(ops)))
        if ready:
            self.pacer.done()
        if now >= self.groups_at:
            self._look_at_uplink()
            self._join_groups()
            self.groups_at = now + GROUPS_EVERY

    def _store(self) -> Store:
        if self.store is None:
            self.store = open_store(self.store_url)
        return self.store

    # -- admission's notices --------------------------------------------------------------

    def _notices(self, now: float) -> bool:
        """Everything admission queued. The peers' hints leave before this host takes its own
        lock (its loop may be mid-pass): the receiving side of a first packet need not wait."""
        notices: list[Notice] = []
        while True:
            try:
                data = self.notices.recv(65535, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            if data[:1] == b"A" and self._storm(now):
                continue  # not even decoded: the tables will carry it
            try:
                notices.append(decode_notice(data))
            except (ValueError, RecordError) as e:
                log.warning("fast lane: malformed notice dropped: %s", e)
        tables, overlay = self.agent.tables, self.agent.overlay  # read as a whole: one reference each
        admits: dict[int, Local] = {}  # by the notice's place in the batch
        out: list[wire.HintEntry] = []
        for i, n in enumerate(notices):
            if isinstance(n, Admitted):
                trace("notice", n.report.mac)
                if n.report.host != self.agent.host or tables is None:
                    continue
                loc = overlay.local_for(report_endpoint(n.report), now)
                if not merge(tables, [loc], (), overlay.extmacs)[1]:  # nothing it could add: the tables decide
                    continue
                admits[i] = loc
                out += self._announce(tables, loc)
        self._send(tables, out)
        out, changed = [], bool(admits)
        with self.agent.lock:  # in arrival order
            for i, n in enumerate(notices):
                if i in admits:
                    overlay.add(admits[i])
                elif isinstance(n, Reported):
                    for vn, mac in n.admitted:
                        overlay.reported(vn, mac, n.revision)
                elif isinstance(n, Withdrawn) and overlay.withdraw(n.vn, n.mac) is not None:
                    out += self._unannounce(n.vn, n.mac)  # (nothing of ours: the tables take it out)
                    changed = True
        self._send(tables, out)
        return changed

    def _storm(self, now: float) -> bool:
        """Count one more admission; whether they now come faster than the lane should follow."""
        self.recent.append(now)
        while self.recent[0] < now - STORM_WINDOW:
            self.recent.popleft()
        return len(self.recent) > STORM_ADMITS

    def _announce(self, tables: HostTables | None, loc: Local) -> list[wire.HintEntry]:
        t = tables.vn(loc.endpoint.vn) if tables else None
        if t is None or not loc.ext or not translating(t) or confirmed(t, loc):
            return []
        self.announced[t.vn, loc.endpoint.mac] = (t.vnid, loc.ext)
        return [wire.HintEntry(wire.HintKind.ANNOUNCE, t.vnid, loc.endpoint.mac, loc.ext)]

    def _unannounce(self, vn: str, mac: str) -> list[wire.HintEntry]:
        if (was := self.announced.pop((vn, mac), None)) is None:
            return []
        return [wire.HintEntry(wire.HintKind.WITHDRAW, was[0], mac, was[1])]

    def _send(self, tables: HostTables | None, entries: list[wire.HintEntry]) -> None:
        if not entries or tables is None:
            return
        network = self.network
        if network is None:
            return
        by_target: dict[str, list[wire.HintEntry]] = {}
        vns = {t.vnid: t for t in tables.vns}
        for e in entries:
            if (t := vns.get(e.vnid)) is not None:
                for target in hint_targets(t, network):
                    by_target.setdefault(target, []).append(e)
        for target, es in by_target.items():
            if ipaddress.ip_address(target).is_multicast:  # out of the uplink: no route names the group
                self.hints.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, _mreqn("0.0.0.0", self.index))
            for i in range(0, len(es), wire.HINT_MAX_ENTRIES):
                self.seq = (self.seq + 1) & 0xFFFFFFFF
                try:
                    self.hints.sendto(wire.encode(wire.Hint(self.seq, tuple(es[i:i + wire.HINT_MAX_ENTRIES]))),
                                      (target, wire.HINT_PORT))
                except OSError as e:
                    log.debug("hint to %s not sent: %s", target, e)

    def _look_at_uplink(self) -> None:
        address = ipv4_address(self.uplink)
        self.network = ipaddress.ip_interface(address).network if address else None
        self.index = _ifindex(self.uplink)

    # -- peers' hints ---------------------------------------------------------------------

    def _hints(self, now: float) -> bool:
        network, index = self.network, self.index
        changed = False
        while True:
            try:
                data, anc, _, (src, _port) = self.hints.recvmsg(2048, socket.CMSG_SPACE(_PKTINFO.size),
                                                                socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            arrived = next((_PKTINFO.unpack(d[:_PKTINFO.size])[0] for level, kind, d in anc
                            if level == socket.IPPROTO_IP and kind == IP_PKTINFO), None)
            if arrived != index or network is None or ipaddress.ip_address(src) not in network:
                log.debug("hint from %s ignored: not from the uplink's network", src)
                continue
            try:
                h = wire.decode(data)
            except DecodeError as e:
                log.warning("malformed hint from %s dropped: %s", src, e)
                continue
            trace("hint", ",".join(e.internal for e in h.entries))
            last = self.seen.get(src)
            if last is not None and h.seq <= last[0] and now - last[1] < HINT_TTL:
                continue  # replayed or reordered
            self.seen[src] = (h.seq, now)
            tables = self.agent.tables
            ours = {t.vnid for t in tables.vns if t.forwarding == "mac"} if tables else set()
            with self.agent.lock:
                overlay = self.agent.overlay
                for e in h.entries:
                    if e.kind is wire.HintKind.WITHDRAW:
                        changed |= overlay.unhint(e.vnid, e.internal, src)
                    elif e.vnid in ours and len(overlay.hints) < HINT_MAX:  # others' VNs take no room
                        overlay.hint(PeerHint(e.vnid, e.internal, e.external, src, now + HINT_TTL))
                        changed = True
        return changed

    def _join_groups(self) -> None:
        """Hints for a multicast VN come to its group: be a member on the uplink while we have its
        table (a hint may be what makes it translated here: its first member on another host)."""
        tables = self.agent.tables
        want = {t.group for t in tables.vns if t.group and t.forwarding == "mac"} if tables else set()
        index = self.index
        for group, add in [(g, True) for g in want - self.groups] + [(g, False) for g in self.groups - want]:
            try:
                self.hints.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP if add else socket.IP_DROP_MEMBERSHIP,
                                      _mreqn(group, index))
            except OSError as e:
                log.debug("hint group %s: %s", group, e)
                continue
            (self.groups.add if add else self.groups.discard)(group)

    # -- settling -------------------------------------------------------------------------

    def _settle(self, now: float) -> bool:
        """Expired hints and rows need a pass to leave the kernel; a row the controller passed
        over (it has published everything up to the revision its report was written at, and
        the tables still lack it) is withdrawn now rather than at its time limit. One read of
        the Observed record per look, and only while such a row waits."""
        overlay = self.agent.overlay
        with self.agent.lock:
            due = [loc for loc in overlay.local.values() if loc.reported and now - loc.since > REJECT_LOOK]
            expiring = any(now >= h.expires for h in overlay.hints.values()) or any(
                now - loc.since > PROVISIONAL_TTL for loc in overlay.local.values())
            for key in [k for k in self.announced if k not in overlay.local]:  # settled: nothing to take back
                del self.announced[key]
        gone = []
        if due:
            store = self._store()
            observed = through(store.get(keys.controller_observed()))
            passed = [loc for loc in due if observed >= loc.reported]
            if passed:
                fresh = published.read(store, self.agent.host)
                for loc in passed:
                    t = fresh.vn(loc.endpoint.vn) if fresh else None
                    if t is None or not confirmed(t, loc):
                        gone.append(loc)
        out: list[wire.HintEntry] = []
        with self.agent.lock:
            for loc in gone:
                ep = loc.endpoint
                if overlay.local.get((ep.vn, ep.mac)) == loc:
                    log.warning("%s in %s: provisional row withdrawn: the controller published without it", ep.mac, ep.vn)
                    overlay.withdraw(ep.vn, ep.mac)
                    out += self._unannounce(ep.vn, ep.mac)
            tables = self.agent.tables
        self._send(tables, out)
        return bool(gone) or expiring


def _mreqn(group: str, index: int) -> bytes:
    """struct ip_mreqn: the group (or any), any local address, the interface by index."""
    return socket.inet_aton(group) + socket.inet_aton("0.0.0.0") + struct.pack("@i", index)


def _ifindex(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return 0
