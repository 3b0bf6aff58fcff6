"""The NVE side of NVO3 auto-attachment (seed 004) as a pure state machine.

Events go in (a frame from a port, a RADIUS reply, the passage of time); actions come out
(send a frame, ask RADIUS, attach or detach an endpoint). Time is an argument, so every timer
is tested without sleeping; the I/O lives in agent/discovery.py.

The EAP relay is the access switch's (authenticator.py, eap_relay.py): each EAP-Request to the
TES is sent again until answered (3 s, doubling, twice), a duplicate Response is relayed once,
and each round has its own timers — no flat limit cuts a long EAP-TLS exchange short. A TES
that stops answering gets AUTH_RESULT failure and its session is forgotten. A server failure
mid-exchange restarts the exchange with a fresh EAP-Request/Identity (its first Access-Request
may go to another server); a failure of the first Access-Request (no server answered) ends
the attempt with AUTH_RESULT failure naming the cause, and nothing is kept: the TES backs off
and tries again. An attached TES keeps its session through a server failure while it is
re-authenticated, and is re-authenticated again later.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Union

from tenet.aaa.provisioning import Provisioning
from tenet.agent.eap_relay import Exchange, Noted, RelayEvent, Timers
from tenet.compute.tables import Servable
from tenet.wire import eap
from tenet.wire.discovery import (
    ACCESS_TUNNEL_PORT, AccessTunnel, Message, MsgType, NveType, Qos, Reason, ReasonCode, Tlv, TlvType,
)

HELLO_INTERVAL = 1  # seconds, announced to the TES
MISSED_HELLOS = 3
REJECT_HOLD = 5.0  # a rejected session is remembered (and its data dropped) this long
UDP = "udp:"  # channel prefix of the L3 transport: "udp:<TES IP>:<TES port>"


def udp_channel(ip: str, port: int) -> str:
    return f"{UDP}{ip}:{port}"


def udp_address(channel: str) -> tuple[str, int]:
    ip, port = channel[len(UDP):].rsplit(":", 1)
    return ip, int(port)


def tunnel_name(vni: int) -> str:
    """The NVE-side device of an L3-attached TES (owned by the agent: starts with "tn")."""
    return f"tna{vni:06x}"


@dataclass(frozen=True)
class Send:
    port: str
    dst: str
    msg: Message


@dataclass(frozen=True)
class AskRadius:
    session: int
    identity: str
    eap: bytes
    state: bytes | None
    tes_mac: str
    port: str
    tag: int = 0  # hand it back with the answer: only the Access-Request in flight is answered


SESSION_BOUND = ("vn", "vnid", "vlan", "ip")  # fixed for a session's life: a CoA cannot move a TES


@dataclass(frozen=True)
class Attach:
    session: "Session"


@dataclass(frozen=True)
class Detach:
    session: "Session"
    reason: ReasonCode


Action = Union[Send, AskRadius, Attach, Detach, Noted]


@dataclass(frozen=True)
class RadiusAnswer:
    """What the RADIUS effect reports back: the pyrad reply reduced to what we act on."""

    code: str  # challenge | accept | reject | error
    eap: bytes | None = None
    state: bytes | None = None
    provisioning: Provisioning | None = None
    error: str = ""


class SessionState(str, Enum):
    AUTHENTICATING = "authenticating"
    ATTACHED = "attached"
    REAUTHENTICATING = "reauthenticating"  # attached, and forwarding, while asked again
    REJECTED = "rejected"  # remembered for REJECT_HOLD: its frames are dropped, never answered


LIVE = (SessionState.ATTACHED, SessionState.REAUTHENTICATING)
EXCHANGING = (SessionState.AUTHENTICATING, SessionState.REAUTHENTICATING)


@dataclass(frozen=True)
class Session:
    id: int
    port: str
    tes_mac: str
    vn: str
    vnid: int
    state: SessionState
    last_seen: float
    identity: str = ""
    radius_state: bytes | None = None
    eap_id: int = 1  # the identifier of the EAP-Request last sent (1: the TES's identity up front)
    provisioning: Provisioning | None = None
    reauth_at: float | None = None
    tes_ip: str = ""
    tunnel_vni: int = 0  # L3 transport only: the access tunnel allocated at REQUEST
    exchange: Exchange = Exchange()

    @property
    def access_port(self) -> str:
        """Where the TES's data enters this NVE: its port (L2) or its access tunnel (L3)."""
        return tunnel_name(self.tunnel_vni) if self.tunnel_vni else self.port


@dataclass
class Nve:
    """One NVE's admission state. `serves` and the offer data come from its published tables."""

    host: str
    nve_type: NveType
    capability: int
    nve_ip: str
    port_macs: dict[str, str]  # port -> the NVE's MAC on that port (the TES talks to it)
    serves: tuple[Servable, ...] = ()
    uplink_mac: str = ""  # L3 transport: the NVE answers from its uplink; "" = L3 transport off
    tunnel_port: int = ACCESS_TUNNEL_PORT
    sessions: dict[int, Session] = field(default_factory=dict)
    dropped: int = 0  # session frames with an unknown or forged session id
    rng: random.Random = field(default_factory=random.Random)
    timers: Timers = field(default_factory=Timers)
    tags: int = 0  # the last Access-Request tag handed out

    # -- helpers -----------------------------------------------------------------------
    def _vn(self, name: str | None, vnid: int) -> Servable | None:
        for s in self.serves:
            if (name and s.vn == name) or (vnid and s.vnid == vnid):
                if (not name or s.vn == name) and (not vnid or s.vnid == vnid):
                    return s
        return None

    def _mac_on(self, port: str) -> str | None:
        """The NVE's MAC toward a TES on this port or channel; None: we do not serve it."""
        return (self.uplink_mac or None) if port.startswith(UDP) else self.port_macs.get(port)

    def _new_tunnel(self) -> int:
        taken = {s.tunnel_vni for s in self.sessions.values()}
        while True:
            vni = self.rng.randrange(1, 2**24)
            if vni not in taken:
                return vni

    def _new_id(self) -> int:
        while True:
            sid = self.rng.randrange(1, 2**32)
            if sid not in self.sessions:
                return sid

    def _reply(self, port: str, dst: str, kind: MsgType, session: int, vnid: int, *tlvs: Tlv) -> Send:
        return Send(port, dst, Message(kind, session, vnid, tuple(tlvs)))

    def _ask(self, now: float, s: Session, packet: bytes, identifier: int, **changes) -> list[Action]:
        """Send an EAP-Request to the TES and wait for its Response."""
        s = replace(s, eap_id=identifier, exchange=s.exchange.asking(now, self.timers, packet), **changes)
        self.sessions[s.id] = s
        return [self._reply(s.port, s.tes_mac, MsgType.EAP, s.id, s.vnid, Tlv(TlvType.EAP_PAYLOAD, packet))]

    def _ask_identity(self, now: float, s: Session, identifier: int, **changes) -> list[Action]:
        pkt = eap.encode(eap.EapPacket(eap.EapCode.REQUEST, identifier, eap.TYPE_IDENTITY, b""))
        return self._ask(now, s, pkt, identifier, **changes)

    # -- events ------------------------------------------------------------------------
    def on_frame(self, now: float, port: str, src: str, msg: Message) -> list[Action]:
        if msg.type is MsgType.DISCOVER:
            return self._discover(port, src, msg)
        if msg.type is MsgType.REQUEST:
            return self._request(now, port, src, msg)
        s = self.sessions.get(msg.session_id)
        if s is None or s.port != port or (src and s.tes_mac != src):  # L3: the channel identifies
            self.dropped += 1  # unknown, stale or forged session id: ignore, never answer
            return []
        if msg.type is MsgType.EAP and s.state in EXCHANGING:
            return self._eap(now, s, msg)
        if msg.type is MsgType.HELLO and s.state in LIVE:
            self.sessions[s.id] = replace(s, last_seen=now)
            return [self._reply(port, src, MsgType.HELLO_ACK, s.id, s.vnid)]
        if msg.type is MsgType.TERMINATE:
            del self.sessions[s.id]
            return [Detach(s, ReasonCode.SHUTDOWN)] if s.state in LIVE else []
        return []

    def _discover(self, port: str, src: str, msg: Message) -> list[Action]:
        vn, mac = self._vn(msg.get(TlvType.VN_NAME), msg.vnid), self._mac_on(port)
        if vn is None or mac is None or not src:
            return []  # we may not serve that VN here: stay silent, another NVE may
        tlvs = [
            Tlv(TlvType.VN_NAME, vn.vn),
            Tlv(TlvType.NVE_TYPE, self.nve_type),
            Tlv(TlvType.NVE_CAPABILITY, self.capability),
            Tlv(TlvType.NVE_MAC, mac),
            Tlv(TlvType.NVE_IP, self.nve_ip),
        ]
        uniq = msg.get(TlvType.HOST_UNIQ)
        if uniq is not None:
            tlvs.append(Tlv(TlvType.HOST_UNIQ, uniq))
        return [self._reply(port, src, MsgType.OFFER, 0, vn.vnid, *tlvs)]

    def _request(self, now: float, port: str, src: str, msg: Message) -> list[Action]:
        vn, mac = self._vn(msg.get(TlvType.VN_NAME), msg.vnid), self._mac_on(port)
        if vn is None or mac is None or not src:
            return []
        for old in [s for s in self.sessions.values() if s.port == port and s.tes_mac == src]:
            del self.sessions[old.id]  # the TES started over: its old session is gone
        ip = msg.get(TlvType.TES_IP)
        tunnel = self._new_tunnel() if port.startswith(UDP) else 0
        s = Session(self._new_id(), port, src, vn.vn, vn.vnid, SessionState.AUTHENTICATING, now,
                    tes_ip=str(ip) if ip else "", tunnel_vni=tunnel)
        self.sessions[s.id] = s
        confirm = [Tlv(TlvType.VN_NAME, vn.vn), Tlv(TlvType.NVE_MAC, mac)]
        uniq = msg.get(TlvType.HOST_UNIQ)
        if uniq is not None:
            confirm.append(Tlv(TlvType.HOST_UNIQ, uniq))
        out: list[Action] = [self._reply(port, src, MsgType.CONFIRM, s.id, vn.vnid, *confirm)]
        payload = msg.get(TlvType.EAP_PAYLOAD)
        if _identity_response(payload):  # the TES named itself up front:
            return out + self._relay(now, s, payload, eap.decode(payload))  # type: ignore[arg-type]
        return out + self._ask_identity(now, s, s.eap_id)  # … or is asked, as any peer is

    def _eap(self, now: float, s: Session, msg: Message) -> list[Action]:
        payload = msg.get(TlvType.EAP_PAYLOAD)
        if not isinstance(payload, bytes):
            return []
        try:
            pkt = eap.decode(payload)
        except ValueError:
            self.dropped += 1
            return []
        if pkt.code is not eap.EapCode.RESPONSE:
            self.dropped += 1
            return []
        why = s.exchange.judge(s.eap_id, pkt.identifier)
        if why is not None:  # a retransmission of what the server is asked already, or stale
            return [Noted(why, s.tes_mac)]
        if s.exchange.rounds >= self.timers.max_rounds:
            return self._fail(now, s, self._failed_code(s), f"more than {self.timers.max_rounds} EAP rounds", None)
        return self._relay(now, s, payload, pkt)

    def _relay(self, now: float, s: Session, payload: bytes, pkt: eap.EapPacket) -> list[Action]:
        identity = s.identity
        if pkt.type == eap.TYPE_IDENTITY:
            identity = pkt.data.decode(errors="replace")
        self.tags += 1
        self.sessions[s.id] = replace(s, identity=identity, last_seen=now, eap_id=pkt.identifier,
                                      exchange=s.exchange.relaying(now, self.tags))
        return [AskRadius(s.id, identity, payload, s.radius_state, s.tes_mac, s.port, tag=self.tags)]

    def on_radius(self, now: float, session: int, answer: RadiusAnswer, tag: int | None = None) -> list[Action]:
        """The server's answer to Access-Request `tag` (None: to whichever is in flight)."""
        s = self.sessions.get(session)
        if s is None or not s.exchange.answers(tag):
            return []  # the attempt it belonged to is over (restarted, timed out, terminated)
        if answer.code == "error":
            return self._server_failed(now, s, answer.error or "RADIUS unavailable")
        if answer.code == "challenge" and answer.eap:
            try:
                identifier = eap.decode(answer.eap).identifier
            except ValueError:
                return self._fail(now, s, self._failed_code(s), "RADIUS sent a malformed EAP packet", None)
            return self._ask(now, s, answer.eap, identifier, radius_state=answer.state)
        if answer.code == "accept" and answer.provisioning is not None:
            p = answer.provisioning
            if (p.vn and p.vn != s.vn) or (p.vnid and p.vnid != s.vnid):
                return self._fail(now, s, ReasonCode.VN_UNAVAILABLE, f"RADIUS assigned another VN ({p.vn or p.vnid})", answer.eap)
            reauth = now + p.session_timeout if p.session_timeout else None
            attached = replace(s, state=SessionState.ATTACHED, provisioning=p, reauth_at=reauth, radius_state=None,
                               last_seen=now, exchange=Exchange(), identity=p.user_name or s.identity,
                               tes_ip=p.ip or s.tes_ip)  # RADIUS's address wins over the TES's claim
            self.sessions[s.id] = attached
            tlvs = [Tlv(TlvType.AUTH_STATUS, 0), Tlv(TlvType.VN_NAME, s.vn), Tlv(TlvType.HELLO_INTERVAL, HELLO_INTERVAL)]
            if p.vlan:
                tlvs.append(Tlv(TlvType.VLAN, p.vlan))
            if p.rate_down_bps or p.cos:
                tlvs.append(Tlv(TlvType.QOS, Qos(p.rate_down_bps or 0, p.cos or 0)))
            if p.rate_up_bps:
                tlvs.append(Tlv(TlvType.RATE_UP, p.rate_up_bps))
            if p.session_timeout:
                tlvs.append(Tlv(TlvType.SESSION_TIMEOUT, p.session_timeout))
            if p.filter_id:
                tlvs.append(Tlv(TlvType.FILTER_ID, p.filter_id))
            if p.ip:
                tlvs.append(Tlv(TlvType.TES_IP, p.ip))
            if s.tunnel_vni:
                tlvs.append(Tlv(TlvType.ACCESS_TUNNEL, AccessTunnel(s.tunnel_vni, self.tunnel_port)))
            if answer.eap:
                tlvs.append(Tlv(TlvType.EAP_PAYLOAD, answer.eap))
            result = self._reply(s.port, s.tes_mac, MsgType.AUTH_RESULT, s.id, s.vnid, *tlvs)
            return [result] if s.state is SessionState.REAUTHENTICATING else [result, Attach(attached)]
        return self._fail(now, s, self._failed_code(s), "access rejected", answer.eap)

    @staticmethod
    def _failed_code(s: Session) -> ReasonCode:
        return ReasonCode.REAUTH_FAILED if s.state is SessionState.REAUTHENTICATING else ReasonCode.AUTH_FAILED

    def _fail(self, now: float, s: Session, code: ReasonCode, why: str, eap_payload: bytes | None,
              hold: bool = True) -> list[Action]:
        """AUTH_RESULT failure; a live session is terminated and detached. A rejected one is
        remembered for REJECT_HOLD (`hold`), or forgotten at once when it was not the TES's
        verdict (a silent TES, an unreachable server)."""
        tlvs = [Tlv(TlvType.AUTH_STATUS, 1), Tlv(TlvType.REASON, Reason(code, why))]
        if eap_payload:
            tlvs.append(Tlv(TlvType.EAP_PAYLOAD, eap_payload))
        out: list[Action] = [self._reply(s.port, s.tes_mac, MsgType.AUTH_RESULT, s.id, s.vnid, *tlvs)]
        if s.state in LIVE:
            del self.sessions[s.id]
            out += [self._reply(s.port, s.tes_mac, MsgType.TERMINATE, s.id, s.vnid, Tlv(TlvType.REASON, Reason(code, why))), Detach(s, code)]
        elif hold:
            self.sessions[s.id] = replace(s, state=SessionState.REJECTED, last_seen=now, exchange=Exchange())
        else:
            del self.sessions[s.id]
        return out

    def _server_failed(self, now: float, s: Session, why: str) -> list[Action]:
        """RADIUS failed this attempt: never the TES's fault (see the module's doc)."""
        out: list[Action] = [Noted(RelayEvent.SERVER_TIMEOUT, s.tes_mac, why)]
        if s.state is SessionState.REAUTHENTICATING:  # server dead: keep the session, ask again later
            self.sessions[s.id] = replace(s, state=SessionState.ATTACHED, radius_state=None, exchange=Exchange(),
                                          reauth_at=now + self.timers.server_retry)
            return out
        if s.exchange.rounds > 1 and s.exchange.restarts < self.timers.server_restarts:
            restarted = replace(s, radius_state=None, exchange=Exchange(restarts=s.exchange.restarts + 1))
            return out + [Noted(RelayEvent.RESTART, s.tes_mac)] + self._ask_identity(now, restarted, (s.eap_id + 1) % 256)
        return out + self._fail(now, s, ReasonCode.AUTH_FAILED, why, None, hold=False)

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for s in list(self.sessions.values()):
            ex = s.exchange
            if s.state in LIVE and now - s.last_seen > MISSED_HELLOS * HELLO_INTERVAL:
                del self.sessions[s.id]
                reason = Reason(ReasonCode.KEEPALIVE_TIMEOUT, f"no hello for {MISSED_HELLOS} intervals")
                out += [self._reply(s.port, s.tes_mac, MsgType.TERMINATE, s.id, s.vnid, Tlv(TlvType.REASON, reason)),
                        Detach(s, ReasonCode.KEEPALIVE_TIMEOUT)]
            elif s.state is SessionState.REJECTED:
                if now - s.last_seen > REJECT_HOLD:
                    del self.sessions[s.id]
            elif ex.server_late(now, self.timers):
                out += self._server_failed(now, s, f"no answer from RADIUS in {self.timers.server_timeout:g} s")
            elif ex.supplicant_late(now) and ex.request is not None:
                if ex.sent >= self.timers.max_req:
                    why = f"no answer to an EAP-Request sent {ex.sent + 1} times"
                    out += [Noted(RelayEvent.SUPPLICANT_TIMEOUT, s.tes_mac, why)]
                    out += self._fail(now, s, self._failed_code(s), why, None, hold=False)
                else:
                    self.sessions[s.id] = replace(s, exchange=ex.again(now, self.timers))
                    out += [Noted(RelayEvent.RETRANSMIT, s.tes_mac),
                            self._reply(s.port, s.tes_mac, MsgType.EAP, s.id, s.vnid, Tlv(TlvType.EAP_PAYLOAD, ex.request))]
            elif s.state is SessionState.ATTACHED and s.reauth_at is not None and now >= s.reauth_at:
                again = replace(s, state=SessionState.REAUTHENTICATING, reauth_at=None, radius_state=None, exchange=Exchange())
                out += self._ask_identity(now, again, (s.eap_id + 1) % 256)
        return out

    def revoke(self, mac: str, why: str, vn: str = "") -> list[Action]:
        """The operator ends a TES's session (RFC 5176 Disconnect in spirit): TERMINATE(admin)
        and detach. Whether it may come back is RADIUS's call when it re-authenticates. With
        `vn`, only the session in that VN: another tenant's TES may have the same MAC."""
        out: list[Action] = []
        for s in [s for s in self.sessions.values()
                  if s.tes_mac == mac and (not vn or s.vn == vn) and s.state in LIVE]:
            del self.sessions[s.id]
            reason = Tlv(TlvType.REASON, Reason(ReasonCode.ADMIN, why))
            out += [self._reply(s.port, s.tes_mac, MsgType.TERMINATE, s.id, s.vnid, reason), Detach(s, ReasonCode.ADMIN)]
        return out

    def port_gone(self, port: str) -> list[Action]:
        """The TES's port has left this NVE (its VM migrated away, or was unplugged): its
        sessions end now — no TERMINATE can reach it, and waiting for three missed hellos
        would keep its entries (and its peers' traffic) pointing here for seconds."""
        gone = [s for s in self.sessions.values() if s.port == port]
        for s in gone:
            del self.sessions[s.id]
        return [Detach(s, ReasonCode.PORT_GONE) for s in gone if s.state in LIVE]

    def change(self, mac: str, changed: dict[str, object]) -> list[Action]:
        """RFC 5176 CoA-Request: the attributes it carries replace the attached TES's (e.g. a new
        WISPr-Bandwidth-Max-Up); the report carries them to the tables, the kernel is re-rated
        in place. The TES is not told: its limits are the network's to hold."""
        changed = {k: v for k, v in changed.items() if k not in SESSION_BOUND}
        out: list[Action] = []
        for s in [s for s in self.sessions.values() if s.tes_mac == mac and s.state in LIVE]:
            new = replace(s, provisioning=replace(s.provisioning or Provisioning(), **changed))  # type: ignore[arg-type]
            self.sessions[s.id] = new
            out.append(Attach(new))
        return out

    def restore(self, now: float, s: Session) -> None:
        """Adopt a session recorded before an agent restart: its TES keeps its attachment."""
        self.sessions[s.id] = replace(s, state=SessionState(s.state), last_seen=now)


def _identity_response(payload: object) -> bool:
    """Is this an EAP-Response/Identity (what a TES may carry in its REQUEST)?"""
    if not isinstance(payload, bytes):
        return False
    try:
        pkt = eap.decode(payload)
    except ValueError:
        return False
    return pkt.code is eap.EapCode.RESPONSE and pkt.type == eap.TYPE_IDENTITY
