"""RADIUS accounting sessions of one admission shard: which record is due when, and what it
says (pure; agent/accountant.py reads the counters and sends).

A session is opened when admission authorizes it (an NVO3 Attach, an 802.1X Authorize) —
Start — and closed when admission ends it — Stop, with the cause and its final counts. In
between, an Interim-Update every interval: the Access-Accept's Acct-Interim-Interval when it
has one (RFC 2869 §5.16), else the agent's `[radius] interim`; never shorter than
`interim_min` (RFC 2869 recommends 60 s; a lab may go lower), 0 meaning none. A re-authorization
or CoA of an open session changes its subject (interval, Class) but opens nothing.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from typing import Union

from tenet.aaa.accounting import AccountingRecord, PortType, Status, TerminateCause, Usage
from tenet.aaa.provisioning import Provisioning
from tenet.agent.admission import UDP, Session
from tenet.wire.discovery import ReasonCode

Key = Union[tuple[str, int], tuple[str, str, str]]  # ("nvo3", session id) | ("dot1x", port, MAC)

# NVO3: why admission detached a TES -> why accounting says its session ended
NVO3_CAUSES = {
    ReasonCode.SHUTDOWN: TerminateCause.USER_REQUEST,  # the TES sent TERMINATE: it logged off
    ReasonCode.KEEPALIVE_TIMEOUT: TerminateCause.LOST_CARRIER,  # its hellos stopped: as a link gone down
    ReasonCode.ADMIN: TerminateCause.ADMIN_RESET,  # `tenet detach`, or RADIUS's Disconnect-Request
    ReasonCode.PORT_GONE: TerminateCause.LOST_CARRIER,  # its port left the NVE (unplugged, migrated away)
    ReasonCode.REAUTH_FAILED: TerminateCause.REAUTHENTICATION_FAILURE,  # RFC 3580 §2.1
    ReasonCode.AUTH_FAILED: TerminateCause.REAUTHENTICATION_FAILURE,
    ReasonCode.VN_UNAVAILABLE: TerminateCause.SERVICE_UNAVAILABLE,  # re-authentication moved it to another VN
}
# 802.1X: the authenticator's Deauthorize reasons
DOT1X_CAUSES = {
    "logoff": TerminateCause.USER_REQUEST,  # EAPOL-Logoff (RFC 3580 §2.1)
    "disconnect": TerminateCause.ADMIN_RESET,  # RFC 5176 Disconnect-Request
}


def nvo3_cause(reason: ReasonCode) -> TerminateCause:
    return NVO3_CAUSES.get(reason, TerminateCause.NAS_REQUEST)


def dot1x_cause(reason: str) -> TerminateCause:
    """Any other reason is a failed re-authentication: the only other way the authenticator
    ends an authorization (its reason is then RADIUS's reject or error)."""
    return DOT1X_CAUSES.get(reason, TerminateCause.REAUTHENTICATION_FAILURE)


@dataclass(frozen=True)
class Subject:
    """Who is accounted for, as admission knows it when it authorizes."""

    key: Key
    user_name: str
    mac: str
    port: str  # where its frames are counted: its VM port, switch port or access tunnel
    nas_port_id: str  # as its Access-Requests named it
    port_type: PortType = PortType.ETHERNET
    framed_ip: str = ""
    classes: tuple[bytes, ...] = ()
    interim: int | None = None  # Acct-Interim-Interval of its Access-Accept


def _classes(p: Provisioning | None) -> tuple[bytes, ...]:
    if p is None or not p.radius_class:
        return ()
    return tuple(bytes.fromhex(c) for c in p.radius_class.split(","))


def _address(ip: str | None) -> str:
    return (ip or "").split("/")[0]


def of_session(s: Session) -> Subject:
    """An attached NVO3 session."""
    p = s.provisioning
    return Subject(("nvo3", s.id), (p.user_name if p else None) or s.identity, s.tes_mac, s.access_port, s.port,
                   PortType.VIRTUAL if s.port.startswith(UDP) else PortType.ETHERNET,
                   _address((p.ip if p else None) or s.tes_ip), _classes(p), p.acct_interim if p else None)


def of_authorization(port: str, mac: str, user_name: str, p: Provisioning) -> Subject:
    """An 802.1X (or MAB) authorization of a MAC on a switch port. User-Name, here as for NVO3:
    the Access-Accept's when it has one (RFC 2865 §5.1: PEAP's and TTLS's inner user)."""
    return Subject(("dot1x", port, mac), p.user_name or user_name, mac, port, port, PortType.ETHERNET, _address(p.ip), _classes(p),
                   p.acct_interim)


def session_id(key: Key, started: int, salt: int) -> str:
    """Acct-Session-Id: 16 lower-case hex digits, unique on this NAS. An NVO3 session's id
    comes first (the agent's log names sessions by it), else `salt` (random per session);
    then the Start's UNIX time, so a reused id is never the same session id twice."""
    first = key[1] if key[0] == "nvo3" else salt
    return f"{int(first) & 0xFFFFFFFF:08x}{started & 0xFFFFFFFF:08x}"


@dataclass(frozen=True)
class Account:
    subject: Subject
    session_id: str
    started: int  # UNIX seconds of its Start
    since: float  # the same moment on the monotonic clock
    interval: int  # seconds between interims; 0: none
    next_interim: float | None


@dataclass
class Ledger:
    nas_identifier: str
    nas_ip: str = ""
    interim: int = 60  # the agent's default interval (0: none unless RADIUS asks)
    interim_min: int = 60
    accounts: dict[Key, Account] = field(default_factory=dict)
    timers: list = field(default_factory=list)  # heap of (next interim, session id, key); stale ones skipped

    def interval(self, s: Subject) -> int:
        wanted = s.interim if s.interim else self.interim
        return max(wanted, self.interim_min) if wanted else 0

    def open(self, now: float, wall: int, s: Subject, sid: str) -> AccountingRecord | None:
        """Start for a new session; None (its subject updated) for one already open."""
        old = self.accounts.get(s.key)
        if old is not None:
            interval = self.interval(s)
            nxt = old.next_interim if interval == old.interval else (now + interval if interval else None)
            self._put(replace(old, subject=s, interval=interval, next_interim=nxt))
            return None
        interval = self.interval(s)
        a = Account(s, sid, wall, now, interval, now + interval if interval else None)
        self._put(a)
        return self._record(a, Status.START, wall)

    def _put(self, a: Account) -> None:
        old = self.accounts.get(a.subject.key)
        self.accounts[a.subject.key] = a
        if a.next_interim is not None and (old is None or old.next_interim != a.next_interim):
            heapq.heappush(self.timers, (a.next_interim, a.session_id, a.subject.key))

    def resume(self, now: float, wall: int, s: Subject, sid: str, started: int, phase: float) -> None:
        """Adopt a session a restarted shard finds open (its counters in the kernel): no Start;
        its first interim `phase` (0..1) of an interval from now, so that a restart does not
        send every session's interim at once."""
        interval = self.interval(s)
        since = now - max(0, wall - started)
        self._put(Account(s, sid, started, since, interval, now + phase * interval if interval else None))

    def take(self, key: Key) -> Account | None:
        """The session ends: it leaves the ledger now (its key may open again at once, e.g. an
        802.1X MAC that logs off and on); its Stop is `stop`'s, once its counts are read."""
        return self.accounts.pop(key, None)

    def stop(self, a: Account, now: float, wall: int, cause: TerminateCause, used: Usage) -> AccountingRecord:
        return self._record(a, Status.STOP, wall, now, used, cause)

    def due(self, now: float) -> list[Account]:
        """The sessions whose interim is due, each once: the caller sends it (`interim_update`,
        which schedules the next)."""
        out = []
        while self.timers and self.timers[0][0] <= now:
            at, sid, key = heapq.heappop(self.timers)
            a = self.accounts.get(key)
            if a is not None and a.session_id == sid and a.next_interim == at:
                out.append(a)
        return out

    def interim_update(self, now: float, wall: int, key: Key, used: Usage) -> AccountingRecord | None:
        a = self.accounts.get(key)
        if a is None:
            return None
        nxt = (a.next_interim or now) + a.interval
        self._put(replace(a, next_interim=(nxt if nxt > now else now + a.interval) if a.interval else None))
        return self._record(a, Status.INTERIM_UPDATE, wall, now, used)

    def _record(self, a: Account, status: Status, wall: int, now: float | None = None, used: Usage | None = None,
                cause: TerminateCause | None = None) -> AccountingRecord:
        s = a.subject
        return AccountingRecord(
            status=status, session_id=a.session_id, event_time=wall, nas_identifier=self.nas_identifier,
            nas_ip=self.nas_ip, user_name=s.user_name, calling_station_id=s.mac.replace(":", "-").upper(),
            nas_port_id=s.nas_port_id, nas_port_type=s.port_type, framed_ip=s.framed_ip, classes=s.classes,
            session_time=None if now is None else max(0, int(now - a.since)), usage=used, cause=cause)
