"""Effects of RADIUS accounting in an admission shard: the counters' table, the accounting
socket, one thread.

Admission (agent/discovery.py) only puts small events on a queue — opened, closed, restored,
the live sessions now and then — and never waits for accounting: the nft calls, the counter
reads and the datagrams happen on this thread, with its own UDP socket to the accounting
servers (port 1813, primary first) and its own libnftables context. The pure parts: the
ledger (agent/accounting.py), the counters' table (agent/session_counters.py), the packets
(aaa/accounting.py) and their retransmission and failover (aaa/accounting_outbox.py).

Level, where it can be: the table is re-read every RESYNC and reconciled to the open sessions;
a session admission no longer has (in two looks in a row) is closed with NAS-Request; and a
restarted shard resumes every session whose counters it finds (same Acct-Session-Id, its
counts going on), and closes those it does not get back.
"""
from __future__ import annotations

import json
import logging
import queue
import random
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Union

from tenet.aaa.accounting import AccountingRecord, Status, TerminateCause, Usage
from tenet.aaa.accounting_outbox import Outbox, Outcome, Server, Transmit
from tenet.agent import session_counters as sc
from tenet.agent.accounting import Account, Key, Ledger, Subject, session_id
from tenet.agent.metrics import AdmissionMetrics

log = logging.getLogger("tenet.accounting")

TICK = 0.2  # s: how often the queue, the timers and the retransmissions are looked at
RCVBUF = 1 << 20  # a pass's Accounting-Responses (thousands under an attach storm) wait in the socket
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux's value (Python 3.11 does not name it)
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
STAMP = socket.CMSG_SPACE(16)
RESYNC = 30.0  # s between full reads of the counters' table
MANY = 64  # more counters than this to read: read the whole table at once
BATCH = 10_000  # events taken per pass
DROP_LOG = 10.0  # s between log lines about dropped records


@dataclass(frozen=True)
class Opened:
    subject: Subject
    at: float
    wall: int


@dataclass(frozen=True)
class Closed:
    key: Key
    cause: TerminateCause
    at: float
    wall: int


@dataclass(frozen=True)
class Restored:
    subject: Subject


@dataclass(frozen=True)
class RestoreDone:
    pass


@dataclass(frozen=True)
class Live:
    keys: frozenset


Event = Union[Opened, Closed, Restored, RestoreDone, Live]


def servers_of(radius: str, port: int) -> tuple[Server, ...]:
    """The accounting servers of a `radius` setting ("IP:PORT", or several comma-separated,
    primary first): the same hosts, on the accounting port."""
    hosts = [part.strip().rpartition(":")[0] or part.strip() for part in radius.split(",") if part.strip()]
    return tuple(Server(h, port) for h in dict.fromkeys(hosts))


class CounterTable:
    """The shard's `netdev tenet_acct<n>` table in the kernel (this thread's nft context)."""

    def __init__(self, table: str) -> None:
        self.table = table
        try:
            import nftables

            self.lib = nftables.Nftables()
            self.lib.set_json_output(True)
        except ImportError:
            self.lib = None

    def _run(self, script: str, json_out: bool) -> tuple[int, str, str]:
        if self.lib is not None:
            self.lib.set_json_output(json_out)
            return self.lib.cmd(script)
        r = subprocess.run(["nft", *(["-j"] if json_out else []), "-f", "-"], input=script, capture_output=True,
                           text=True, timeout=10)
        return r.returncode, r.stdout, r.stderr

    def observe(self, table: str = "") -> sc.Observed:
        rc, out, _ = self._run(f"list table netdev {table or self.table}", True)
        return sc.parse(out) if rc == 0 else sc.Observed()

    def tables(self) -> list[str]:
        """The netdev tables there are (other shards' counters among them)."""
        rc, out, _ = self._run("list tables netdev", True)
        if rc != 0:
            return []
        return [item["table"]["name"] for line in out.splitlines() if line.strip()
                for item in json.loads(line).get("nftables", []) if "table" in item]

    def drop(self, table: str) -> None:
        self._run(f"delete table netdev {table}", False)

    def apply(self, script: str) -> None:
        rc, _, err = self._run(script, False)
        if rc != 0:
            raise RuntimeError(f"nft refused the accounting counters' change: {err.strip()}")

    def read(self, sessions: list[sc.Counted]) -> dict[str, tuple[int, int, str]]:
        if len(sessions) > MANY:
            return self.observe().counters
        script = sc.reads(self.table, sessions)
        if not script:
            return {}
        rc, out, _ = self._run(script, True)
        return sc.parse(out).counters if rc == 0 else self.observe().counters  # one missing: read them all


class Accountant:
    """One shard's accounting: `opened`, `closed`, `restored`, `live` from any thread (a queue
    put each), everything else on its own thread (`start`)."""

    def __init__(self, *, servers: tuple[Server, ...], secret: bytes, nas_identifier: str, table: str,
                 interim: int = 60, interim_min: int = 60, metrics: AdmissionMetrics | None = None,
                 counters: CounterTable | None = None, sweep_from: int | None = None) -> None:
        self.ledger = Ledger(nas_identifier, "", interim, interim_min)
        self.sweep_from = sweep_from  # shard 0: tables of shards from this number on are no one's any more
        self.outbox = Outbox(servers, secret)
        self.servers = servers
        self.addresses = {(socket.gethostbyname(s.host), s.port): i for i, s in enumerate(servers)}
        self.metrics = metrics or AdmissionMetrics()
        self.table = table
        self.counters = counters  # made on the thread (a libnftables context is the thread's own)
        self.events: queue.SimpleQueue = queue.SimpleQueue()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)  # a pass's answers wait here
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)  # … each stamped as it came
        self.next_pass = 0.0
        self.installed = sc.Observed()
        self.resynced = float("-inf")
        self.restoring = True
        self.recovered: dict[tuple[str, str], sc.Counted] = {}  # (port, MAC) -> counters found at start
        self.missing: dict[Key, int] = {}  # open accounts admission did not list, and how many times in a row
        self.at: dict[tuple[str, str], Key] = {}  # (port, MAC) -> the open session there
        self.by_port: dict[str, set[Key]] = {}
        self.dirty_ports: set[str] = set()  # whose share of the table is to be reconciled next pass
        self.dirty_counters: set[str] = set()
        self.unhooked: set[str] = set()  # ports with sessions, not there yet (no chains)
        self.rng = random.Random()
        self.drops, self.drop_logged = 0, float("-inf")
        self.stopping = threading.Event()

    @property
    def nas_ip(self) -> str:
        return self.ledger.nas_ip

    @nas_ip.setter
    def nas_ip(self, ip: str) -> None:
        self.ledger.nas_ip = "" if ip in ("", "0.0.0.0") else ip

    # -- from admission (any thread): never blocks --------------------------------------
    def opened(self, subject: Subject) -> None:
        self.events.put(Opened(subject, time.monotonic(), int(time.time())))

    def closed(self, key: Key, cause: TerminateCause) -> None:
        self.events.put(Closed(key, cause, time.monotonic(), int(time.time())))

    def restored(self, subject: Subject) -> None:
        self.events.put(Restored(subject))

    def restore_done(self) -> None:
        self.events.put(RestoreDone())

    def live(self, keys: frozenset) -> None:
        self.events.put(Live(keys))

    def start(self) -> None:
        threading.Thread(target=self.run, name="accounting", daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()

    # -- the thread ----------------------------------------------------------------------
    def run(self) -> None:
        if self.counters is None:
            self.counters = CounterTable(self.table)
        self.installed = self.counters.observe()
        self.resynced = time.monotonic()
        self.recovered = {(c.port, c.mac): c for c in sc.recorded(self.installed)}
        if self.sweep_from is not None:
            self._sweep()
        while not self.stopping.is_set():
            try:
                self._pass()
            except Exception:  # accounting must never end: the next pass starts from the kernel again
                log.exception("accounting pass failed")
                self.resynced = float("-inf")
                self.stopping.wait(TICK)

    def _sweep(self) -> None:
        """Shard 0, at start: the counters' tables of shards that no longer exist (the agent now
        runs fewer) — each of their sessions gets its Stop (NAS-Request, its counts), then the
        table goes. Their TESs are adopted by the shards that own them now, with a new Start."""
        now, wall = time.monotonic(), int(time.time())
        for table in self.counters.tables():  # type: ignore[union-attr]
            index = table[len(sc.TABLE):]
            if not (table.startswith(sc.TABLE) and index.isdigit() and int(index) >= self.sweep_from):  # type: ignore[operator]
                continue
            seen = self.counters.observe(table)  # type: ignore[union-attr]
            for c in sc.recorded(seen):
                a = _orphan(c, now, wall)
                self._submit(self.ledger.stop(a, now, wall, TerminateCause.NAS_REQUEST,
                                              sc.usage(seen.counters, c) or Usage()))
            self.counters.drop(table)  # type: ignore[union-attr]
            log.info("accounting: table %s of a shard gone closed (%d sessions)", table, len(sc.recorded(seen)))

    def _pass(self) -> None:
        """Every TICK, everything at once: answers, events, the table, timers. Not woken by each
        answer or event: a thread of the admission process that woke a thousand times a second
        would take the GIL from admission as often (a shard's admission rate fell by a fifth
        under an attach storm while it did). Answers wait in the socket, stamped by the kernel."""
        self.stopping.wait(max(0.0, self.next_pass - time.monotonic()))
        now = time.monotonic()
        self.next_pass = now + TICK
        self._receive(now)
        ending: list[tuple[Account, TerminateCause, float, int]] = []
        for _ in range(BATCH):
            try:
                e = self.events.get_nowait()
            except queue.Empty:
                break
            self._event(now, e, ending)
        full = now - self.resynced >= RESYNC
        if full:
            self.installed = self.counters.observe()  # type: ignore[union-attr]
            self.resynced = now
        else:
            self._ports_appeared()
        if ending:
            self._stop(ending)
        if full or self.dirty_ports:
            self._reconcile(full)
        self._interims(now)
        self._do(self.outbox.tick(now))
        self.metrics.accounting_queue.set(self.outbox.size)

    # -- the ledger, indexed by port ----------------------------------------------------
    def _touch(self, port: str, mac: str, sid: str) -> None:
        """This port's share of the table is to be reconciled (and these counters with it)."""
        self.dirty_ports.add(port)
        self.dirty_counters |= {f"c{sid}_i", f"c{sid}_o"}

    def _opened(self, key: Key) -> None:
        a = self.ledger.accounts[key]
        self.at[(a.subject.port, a.subject.mac)] = key
        self.by_port.setdefault(a.subject.port, set()).add(key)
        self._touch(a.subject.port, a.subject.mac, a.session_id)

    def _take(self, key: Key) -> Account | None:
        a = self.ledger.take(key)
        if a is None:
            return None
        where = (a.subject.port, a.subject.mac)
        if self.at.get(where) == key:
            del self.at[where]
        keys = self.by_port.get(a.subject.port, set())
        keys.discard(key)
        if not keys:
            self.by_port.pop(a.subject.port, None)
        self._touch(a.subject.port, a.subject.mac, a.session_id)
        return a

    def _event(self, now: float, e: Event, ending: list) -> None:
        if isinstance(e, Opened):
            s = e.subject
            other = self.at.get((s.port, s.mac))
            if other is not None and other != s.key:  # the same MAC on the same port again: it restarted
                ending.append((self._take(other), TerminateCause.SUPPLICANT_RESTART, e.at, e.wall))
            c = self.recovered.pop((s.port, s.mac), None)  # … or it did so while this shard was down
            if c is not None:
                self._touch(c.port, c.mac, c.session_id)
                ending.append((_orphan(c, now, e.wall), TerminateCause.SUPPLICANT_RESTART, e.at, e.wall))
            record = self.ledger.open(e.at, e.wall, s, session_id(s.key, e.wall, self.rng.getrandbits(32)))
            if record is not None:
                self._opened(s.key)
                self._submit(record)
        elif isinstance(e, Closed):
            a = self._take(e.key)
            if a is not None:
                ending.append((a, e.cause, e.at, e.wall))
        elif isinstance(e, Restored):
            self._resume(now, e.subject)
        elif isinstance(e, RestoreDone):
            self.restoring = False
            wall = int(time.time())
            for c in self.recovered.values():  # counting for a session nobody has any more
                self._touch(c.port, c.mac, c.session_id)
                ending.append((_orphan(c, now, wall), TerminateCause.NAS_REQUEST, now, wall))
            self.recovered = {}
        elif isinstance(e, Live) and not self.restoring:
            for key in list(self.missing):
                if key in e.keys or key not in self.ledger.accounts:
                    del self.missing[key]
            wall = int(time.time())
            for key in [k for k in self.ledger.accounts if k not in e.keys]:
                self.missing[key] = self.missing.get(key, 0) + 1
                if self.missing[key] >= 2:  # twice: not an event still on its way here
                    del self.missing[key]
                    log.warning("accounting: session %s ended without a word from admission", key)
                    ending.append((self._take(key), TerminateCause.NAS_REQUEST, now, wall))

    def _resume(self, now: float, s: Subject) -> None:
        """A session the restarted shard adopted: its counters' session, if they are its own."""
        c = self.recovered.pop((s.port, s.mac), None)
        wall = int(time.time())
        if c is not None and (s.key[0] != "nvo3" or c.session_id[:8] == f"{int(s.key[1]) & 0xFFFFFFFF:08x}"):
            self.ledger.resume(now, wall, s, c.session_id, c.started, self.rng.random())
            self._opened(s.key)
            return
        if c is not None:  # another session's counters on its port and MAC: that one is over
            self.recovered[(c.port, c.mac)] = c
        record = self.ledger.open(now, wall, s, session_id(s.key, wall, self.rng.getrandbits(32)))
        if record is not None:
            self._opened(s.key)
            self._submit(record)

    def _desired(self, ports: set[str] | None) -> list[sc.Counted]:
        """The counters the table should hold: every session's (`ports` None), or those on `ports`."""
        keys = self.ledger.accounts if ports is None else [k for p in ports for k in self.by_port.get(p, ())]
        out = []
        for k in keys:
            a = self.ledger.accounts[k]
            try:
                out.append(sc.Counted(a.session_id, a.subject.port, a.subject.mac, a.started, a.subject.user_name))
            except ValueError:
                continue  # not a name nft takes: counted as nothing (its records carry zeros)
        kept = [c for c in self.recovered.values() if ports is None or c.port in ports]
        return out + kept  # found at start, kept until restore is done: they may be resumed

    def _present(self, ports: set[str]) -> frozenset[str]:
        out = set()
        for p in ports:
            try:
                socket.if_nametoindex(p)
                out.add(p)
            except OSError:
                pass
        return frozenset(out)

    def _ports_appeared(self) -> None:
        """A port with sessions but no chains yet (an access tunnel made after its Attach) that is
        there now is reconciled."""
        if self.unhooked:
            came = self._present(self.unhooked)
            self.dirty_ports |= came
            self.unhooked -= came

    def _reconcile(self, full: bool) -> None:
        """The table made to hold the desired counters: all of it after a full read, else only the
        ports (and counters) that changed since the last pass."""
        ports = None if full else set(self.dirty_ports)
        desired = self._desired(ports)
        present = self._present({c.port for c in desired})
        names = None if ports is None else self.dirty_counters | {n for c in desired for n in (c.in_name, c.out_name)}
        seen = self.installed if ports is None else sc.part(self.installed, ports, names)  # type: ignore[arg-type]
        self.dirty_ports, self.dirty_counters = set(), set()
        self.unhooked = (self.unhooked if ports is not None else set()) | {c.port for c in desired if c.port not in present}
        script = sc.plan(self.table, desired, seen, present)
        if not script:
            return
        try:
            self.counters.apply(script)  # type: ignore[union-attr]
        except Exception as e:
            self.metrics.accounting_errors.inc()
            log.error("%s", e)
            self.resynced = float("-inf")  # read the table whole on the next pass
            return
        done = sc.after(self.table, desired, seen, present)
        self.installed = done if ports is None else sc.merge(self.installed, done, ports, names)  # type: ignore[arg-type]

    def _counted(self, a: Account) -> sc.Counted | None:
        try:
            c = sc.Counted(a.session_id, a.subject.port, a.subject.mac, a.started, a.subject.user_name)
        except ValueError:
            return None
        return c if c.in_name in self.installed.counters else None

    def _read(self, accounts: list[Account]) -> dict[str, tuple[int, int, str]]:
        counted = [c for c in (self._counted(a) for a in accounts) if c is not None]
        try:
            return self.counters.read(counted) if counted else {}  # type: ignore[union-attr]
        except Exception as e:
            self.metrics.accounting_errors.inc()
            log.error("accounting counters unreadable: %s", e)
            return {}

    def _usage(self, values: dict, a: Account) -> Usage:
        c = self._counted(a)
        return (sc.usage(values, c) if c is not None else None) or Usage()

    def _stop(self, ending: list[tuple[Account, TerminateCause, float, int]]) -> None:
        values = self._read([a for a, _, _, _ in ending])
        for a, cause, at, wall in ending:
            self._submit(self.ledger.stop(a, at, wall, cause, self._usage(values, a)))

    def _interims(self, now: float) -> None:
        due = self.ledger.due(now)
        if not due:
            return
        values = self._read(due)
        wall = int(time.time())
        for a in due:
            record = self.ledger.interim_update(now, wall, a.subject.key, self._usage(values, a))
            if record is not None:
                self._submit(record)

    # -- the wire ------------------------------------------------------------------------
    def _submit(self, record: AccountingRecord) -> None:
        self._do(self.outbox.submit(time.monotonic(), record))

    def _do(self, actions: list) -> None:
        for a in actions:
            if isinstance(a, Transmit):
                if a.retransmission:
                    self.metrics.accounting_retransmissions.inc()
                else:
                    self.metrics.accounting.labels(_status(a.data), "sent").inc()
                s = self.servers[a.server]
                try:
                    self.sock.sendto(a.data, (s.host, s.port))
                except OSError:
                    pass  # unreachable for now: the retry, the next server or the age limit decides
            elif isinstance(a, Outcome):
                status = a.record.status.name.lower()
                if a.acked:
                    self.metrics.accounting.labels(status, "acknowledged").inc()
                    if a.rtt is not None:
                        self.metrics.accounting_rtt.observe(a.rtt)
                else:
                    self.metrics.accounting.labels(status, "dropped").inc()
                    self._dropped(status, a)

    def _dropped(self, status: str, a: Outcome) -> None:
        """Logged once, then at most every DROP_LOG seconds with how many more: a dead server
        drops every record, and its log must not be as long as its session list."""
        self.drops += 1
        now = time.monotonic()
        if now - self.drop_logged >= DROP_LOG:
            more = f" (and {self.drops - 1} more since the last report)" if self.drops > 1 else ""
            log.warning("accounting %s for session %s dropped: %s%s", status, a.record.session_id, a.reason, more)
            self.drop_logged, self.drops = now, 0

    def _receive(self, now: float) -> None:
        wall = time.time()
        while True:
            try:
                data, anc, _, addr = self.sock.recvmsg(4096, STAMP)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ICMP unreachable and the like: the timeouts decide
                continue
            server = self.addresses.get(addr)
            if server is not None:
                self._do(self.outbox.on_response(now - max(0.0, wall - _stamp(anc, wall)), server, data))


def _stamp(anc: list, default: float) -> float:
    """The kernel's receive time of a datagram (SO_TIMESTAMPNS), UNIX seconds."""
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec + nsec / 1e9
    return default


def _orphan(c: sc.Counted, now: float, wall: int) -> Account:
    """The account of counters found in the kernel whose session admission no longer has."""
    s = Subject(("kernel", c.session_id), c.user_name, c.mac, c.port, c.port)
    return Account(s, c.session_id, c.started, now - max(0, wall - c.started), 0, None)


def _status(data: bytes) -> str:
    """The Acct-Status-Type of a datagram we built (always the first attribute)."""
    return Status(int.from_bytes(data[22:26], "big")).name.lower()

