"""Accounting-Requests on their way to the accounting servers, as a pure state machine.

Records go in (`submit`), answers come in (`on_response`), time passes (`tick`); what comes
out is a datagram to send to server i (Transmit) or a record's fate (Outcome: acknowledged,
or dropped with the reason). The socket lives with the caller; time is an argument.

- Servers are tried in their configured order: a request goes to the first one alive. One that
  leaves a request unanswered `tries` times is dead for `dead_time`, and the request moves to
  the next; once the dead time is over new requests try the primary again.
- Each retransmission is a new packet (RFC 2866 §5.2, RFC 5080 §2.2.1): Acct-Delay-Time is the
  record's age, so the Identifier and authenticator change; the timeout doubles up to
  `max_timeout`. An answer to the previous transmission still counts (so each request holds
  two of the server's 256 identifiers, and at most 128 requests are in flight to one server).
- Bounded: at most `capacity` records wait or fly. When full, an Interim-Update is what gives
  way (the next one repeats its totals), a Start or Stop only when no interim is left to drop.
  A record still unanswered after `max_age` is dropped. Nothing here ever blocks admission.
"""
from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Union

from tenet.aaa.accounting import AccountingRecord, Status, encode, response_authentic

IDS = 256
PER_SERVER = 128  # requests in flight to one server: each holds at most two identifiers (its last two transmissions)


@dataclass(frozen=True)
class Server:
    host: str
    port: int = 1813


@dataclass(frozen=True)
class Transmit:
    server: int  # index into the outbox's servers
    data: bytes
    retransmission: bool


@dataclass(frozen=True)
class Outcome:
    record: AccountingRecord
    acked: bool
    server: int  # where it was last sent (-1: never)
    reason: str = ""  # why it was dropped: "queue full" | "no answer"
    rtt: float | None = None  # from the transmission answered to its answer


Action = Union[Transmit, Outcome]


@dataclass
class _Pending:
    record: AccountingRecord
    created: float
    server: int = -1
    tries: int = 0  # transmissions to `server`
    timeout: float = 0.0
    deadline: float = 0.0
    attempts: dict[int, tuple[bytes, float]] = field(default_factory=dict)  # identifier -> (datagram, when sent)


@dataclass
class Outbox:
    servers: tuple[Server, ...]
    secret: bytes
    capacity: int = 4096
    first_timeout: float = 2.0  # RFC 5080's IRT
    max_timeout: float = 16.0  # … and MRT
    tries: int = 3  # per server, before it is taken for dead
    dead_time: float = 30.0
    max_age: float = 300.0
    rng: random.Random = field(default_factory=random.Random)
    waiting: deque = field(default_factory=deque, init=False)
    inflight: dict[tuple[int, int], _Pending] = field(default_factory=dict, init=False)  # (server, id) -> request
    flying: dict[int, _Pending] = field(default_factory=dict, init=False)  # id(request) -> request in flight
    busy: list[int] = field(init=False)  # requests in flight, per server
    dead_until: list[float] = field(init=False)
    _next: list[int] = field(init=False)
    size: int = field(default=0, init=False)  # records waiting or in flight
    interims: int = field(default=0, init=False)  # Interim-Updates waiting (what a full queue drops first)

    def __post_init__(self) -> None:
        if not self.servers:
            raise ValueError("an accounting outbox needs at least one server")
        self.dead_until = [float("-inf")] * len(self.servers)
        self.busy = [0] * len(self.servers)
        self._next = [self.rng.randrange(IDS) for _ in self.servers]

    # -- events ------------------------------------------------------------------------
    def submit(self, now: float, record: AccountingRecord) -> list[Action]:
        out: list[Action] = []
        interim = record.status is Status.INTERIM_UPDATE
        if self.size >= self.capacity:
            if interim or not self.interims:
                return [Outcome(record, False, -1, "queue full")]
            victim = next(p for p in self.waiting if p.record.status is Status.INTERIM_UPDATE)
            self.waiting.remove(victim)
            self.size -= 1
            self.interims -= 1
            out.append(Outcome(victim.record, False, victim.server, "queue full"))
        self.waiting.append(_Pending(record, now))
        self.size += 1
        self.interims += interim
        return out + self._start(now)

    def on_response(self, now: float, server: int, raw: bytes) -> list[Action]:
        """A datagram from server `server`; forged, stale or malformed ones change nothing."""
        if len(raw) < 20:
            return []
        p = self.inflight.get((server, raw[1]))
        if p is None:
            return []
        sent = p.attempts.get(raw[1])
        if sent is None or not response_authentic(raw, sent[0], self.secret):
            return []
        self._release(p)
        self.dead_until[server] = float("-inf")  # it answers: alive
        return [Outcome(p.record, True, server, rtt=now - sent[1]), *self._start(now)]

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for p in list(self.flying.values()):
            if now < p.deadline:
                continue
            if now - p.created >= self.max_age:
                self._release(p)
                out.append(Outcome(p.record, False, p.server, "no answer"))
            elif p.tries < self.tries:
                out += self._send(now, p, p.server)
            else:  # this server is dead to us for a while: the next one in order
                self.dead_until[p.server] = max(self.dead_until[p.server], now + self.dead_time)
                out += self._send(now, p, self._after(now, p.server))
        return out + self._start(now)

    # -- helpers -----------------------------------------------------------------------
    def _alive(self, now: float) -> int | None:
        return next((i for i in range(len(self.servers)) if self.dead_until[i] <= now), None)

    def _after(self, now: float, server: int) -> int:
        """The next server in order after `server` that is alive, else simply the next."""
        n = len(self.servers)
        order = [(server + k) % n for k in range(1, n + 1)]
        return next((i for i in order if self.dead_until[i] <= now), order[0])

    def _free_id(self, server: int) -> int | None:
        for _ in range(IDS):
            rid = self._next[server]
            self._next[server] = (rid + 1) % IDS
            if (server, rid) not in self.inflight:
                return rid
        return None

    def _send(self, now: float, p: _Pending, server: int) -> list[Action]:
        rid = self._free_id(server)
        if rid is None:  # 256 requests in flight to that server: try again at the next tick
            p.deadline = now + 0.1
            return []
        moved = server != p.server
        retransmission = p.server >= 0
        if moved:
            for old in list(p.attempts):
                self.inflight.pop((p.server, old), None)
            p.attempts.clear()
            if retransmission:
                self.busy[p.server] -= 1
            self.busy[server] += 1
            self.flying[id(p)] = p
            p.server, p.tries, p.timeout = server, 0, self.first_timeout
        else:
            p.timeout = min(p.timeout * 2, self.max_timeout)
            for old in list(p.attempts)[:-1]:  # the one before last: its answer is not waited for any more
                del p.attempts[old]
                self.inflight.pop((server, old), None)
        data = encode(p.record, rid, self.secret, delay=int(now - p.created))
        p.tries += 1
        p.deadline = now + p.timeout * self.rng.uniform(0.9, 1.1)  # RFC 5080's RAND: no synchronised retries
        p.attempts[rid] = (data, now)
        self.inflight[(server, rid)] = p
        return [Transmit(server, data, retransmission)]

    def _start(self, now: float) -> list[Action]:
        out: list[Action] = []
        while self.waiting:
            server = self._alive(now)
            if server is None:  # all dead: the one that died first is tried (nobody else would be)
                server = min(range(len(self.servers)), key=lambda i: self.dead_until[i])
            if self.busy[server] >= PER_SERVER:
                break
            sent = self._send(now, self.waiting[0], server)
            if not sent:
                break
            self.interims -= self.waiting.popleft().record.status is Status.INTERIM_UPDATE
            out += sent
        return out

    def _release(self, p: _Pending) -> None:
        self.size -= 1
        self.busy[p.server] -= 1
        del self.flying[id(p)]
        for rid in p.attempts:
            self.inflight.pop((p.server, rid), None)
