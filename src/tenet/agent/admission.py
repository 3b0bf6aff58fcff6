"""The NVE side of NVO3 auto-attachment (seed 004) as a pure state machine.

Events go in (a frame from a port, a RADIUS reply, the passage of time); actions come out
(send a frame, ask RADIUS, attach or detach an endpoint). Time is an argument, so every timer
is tested without sleeping; the I/O lives in agent/discovery.py.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from typing import Union

from tenet.aaa.provisioning import Provisioning
from tenet.compute.tables import Servable
from tenet.wire import eap
from tenet.wire.discovery import (
    ACCESS_TUNNEL_PORT, AccessTunnel, Message, MsgType, NveType, Qos, Reason, ReasonCode, Tlv, TlvType,
)

HELLO_INTERVAL = 1  # seconds, announced to the TES
MISSED_HELLOS = 3
AUTH_TIMEOUT = 10.0  # an unfinished EAP exchange is dropped after this
REJECT_HOLD = 5.0  # a rejected session is remembered (and its data dropped) this long
REAUTH_RETRY = 30.0  # s: a re-authentication RADIUS could not answer is tried again after this
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


SESSION_BOUND = ("vn", "vnid", "vlan", "ip")  # fixed for a session's life: a CoA cannot move a TES


@dataclass(frozen=True)
class Attach:
    session: "Session"


@dataclass(frozen=True)
class Detach:
    session: "Session"
    reason: ReasonCode


Action = Union[Send, AskRadius, Attach, Detach]


@dataclass(frozen=True)
class RadiusAnswer:
    """What the RADIUS effect reports back: the pyrad reply reduced to what we act on."""

    code: str  # challenge | accept | reject | error
    eap: bytes | None = None
    state: bytes | None = None
    provisioning: Provisioning | None = None
    error: str = ""


@dataclass(frozen=True)
class Session:
    id: int
    port: str
    tes_mac: str
    vn: str
    vnid: int
    state: str  # authenticating | attached | reauthenticating | rejected
    last_seen: float
    identity: str = ""
    radius_state: bytes | None = None
    eap_id: int = 1
    provisioning: Provisioning | None = None
    reauth_at: float | None = None
    tes_ip: str = ""
    tunnel_vni: int = 0  # L3 transport only: the access tunnel allocated at REQUEST

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

    def _eap_request_identity(self, s: Session) -> Send:
        pkt = eap.encode(eap.EapPacket(eap.EapCode.REQUEST, s.eap_id, eap.TYPE_IDENTITY, b""))
        return self._reply(s.port, s.tes_mac, MsgType.EAP, s.id, s.vnid, Tlv(TlvType.EAP_PAYLOAD, pkt))

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
        if msg.type is MsgType.EAP and s.state in ("authenticating", "reauthenticating"):
            return self._eap(now, s, msg)
        if msg.type is MsgType.HELLO and s.state in ("attached", "reauthenticating"):
            self.sessions[s.id] = replace(s, last_seen=now)
            return [self._reply(port, src, MsgType.HELLO_ACK, s.id, s.vnid)]
        if msg.type is MsgType.TERMINATE:
            del self.sessions[s.id]
            return [Detach(s, ReasonCode.SHUTDOWN)] if s.state != "rejected" else []
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
        s = Session(self._new_id(), port, src, vn.vn, vn.vnid, "authenticating", now, tes_ip=str(ip) if ip else "",
                    tunnel_vni=tunnel)
        self.sessions[s.id] = s
        confirm = [Tlv(TlvType.VN_NAME, vn.vn), Tlv(TlvType.NVE_MAC, mac)]
        uniq = msg.get(TlvType.HOST_UNIQ)
        if uniq is not None:
            confirm.append(Tlv(TlvType.HOST_UNIQ, uniq))
        out: list[Action] = [self._reply(port, src, MsgType.CONFIRM, s.id, vn.vnid, *confirm)]
        if _identity_response(msg.get(TlvType.EAP_PAYLOAD)):  # the TES named itself up front:
            return out + self._eap(now, s, msg)  # straight to RADIUS, one round trip saved
        return out + [self._eap_request_identity(s)]

    def _eap(self, now: float, s: Session, msg: Message) -> list[Action]:
        payload = msg.get(TlvType.EAP_PAYLOAD)
        if not isinstance(payload, bytes):
            return []
        try:
            pkt = eap.decode(payload)
        except ValueError:
            self.dropped += 1
            return []
        identity = s.identity
        if pkt.type == eap.TYPE_IDENTITY and pkt.code is eap.EapCode.RESPONSE:
            identity = pkt.data.decode(errors="replace")
        self.sessions[s.id] = replace(s, identity=identity, last_seen=now, eap_id=pkt.identifier)
        return [AskRadius(s.id, identity, payload, s.radius_state, s.tes_mac, s.port)]

    def on_radius(self, now: float, session: int, answer: RadiusAnswer) -> list[Action]:
        s = self.sessions.get(session)
        if s is None:
            return []
        if answer.code == "challenge" and answer.eap:
            self.sessions[s.id] = replace(s, radius_state=answer.state)
            return [self._reply(s.port, s.tes_mac, MsgType.EAP, s.id, s.vnid, Tlv(TlvType.EAP_PAYLOAD, answer.eap))]
        if answer.code == "accept" and answer.provisioning is not None:
            p = answer.provisioning
            if (p.vn and p.vn != s.vn) or (p.vnid and p.vnid != s.vnid):
                return self._fail(now, s, ReasonCode.VN_UNAVAILABLE, f"RADIUS assigned another VN ({p.vn or p.vnid})", answer.eap)
            reauth = now + p.session_timeout if p.session_timeout else None
            attached = replace(s, state="attached", provisioning=p, reauth_at=reauth, radius_state=None, last_seen=now,
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
            return [result] if s.state == "reauthenticating" else [result, Attach(attached)]
        if answer.code == "error" and s.state == "reauthenticating":
            # RADIUS unavailable is no verdict on the TES: an attached session outlives an
            # outage (as an 802.1X port stays authorized when the server does not answer)
            self.sessions[s.id] = replace(s, state="attached", radius_state=None, reauth_at=now + REAUTH_RETRY)
            return []
        why = answer.error or "access rejected"
        code = ReasonCode.REAUTH_FAILED if s.state == "reauthenticating" else ReasonCode.AUTH_FAILED
        return self._fail(now, s, code, why, answer.eap)

    def _fail(self, now: float, s: Session, code: ReasonCode, why: str, eap_payload: bytes | None) -> list[Action]:
        tlvs = [Tlv(TlvType.AUTH_STATUS, 1), Tlv(TlvType.REASON, Reason(code, why))]
        if eap_payload:
            tlvs.append(Tlv(TlvType.EAP_PAYLOAD, eap_payload))
        out: list[Action] = [self._reply(s.port, s.tes_mac, MsgType.AUTH_RESULT, s.id, s.vnid, *tlvs)]
        if s.state in ("attached", "reauthenticating"):
            del self.sessions[s.id]
            out += [self._reply(s.port, s.tes_mac, MsgType.TERMINATE, s.id, s.vnid, Tlv(TlvType.REASON, Reason(code, why))), Detach(s, code)]
        else:
            self.sessions[s.id] = replace(s, state="rejected", last_seen=now)
        return out

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for s in list(self.sessions.values()):
            if s.state in ("attached", "reauthenticating") and now - s.last_seen > MISSED_HELLOS * HELLO_INTERVAL:
                del self.sessions[s.id]
                reason = Reason(ReasonCode.KEEPALIVE_TIMEOUT, f"no hello for {MISSED_HELLOS} intervals")
                out += [self._reply(s.port, s.tes_mac, MsgType.TERMINATE, s.id, s.vnid, Tlv(TlvType.REASON, reason)),
                        Detach(s, ReasonCode.KEEPALIVE_TIMEOUT)]
            elif s.state == "authenticating" and now - s.last_seen > AUTH_TIMEOUT:
                del self.sessions[s.id]
            elif s.state == "rejected" and now - s.last_seen > REJECT_HOLD:
                del self.sessions[s.id]
            elif s.state == "attached" and s.reauth_at is not None and now >= s.reauth_at:
                again = replace(s, state="reauthenticating", eap_id=(s.eap_id + 1) % 256, reauth_at=None, radius_state=None)
                self.sessions[s.id] = again
                out.append(self._eap_request_identity(again))
        return out

    def revoke(self, mac: str, why: str, vn: str = "") -> list[Action]:
        """The operator ends a TES's session (RFC 5176 Disconnect in spirit): TERMINATE(admin)
        and detach. Whether it may come back is RADIUS's call when it re-authenticates. With
        `vn`, only the session in that VN: another tenant's TES may have the same MAC."""
        out: list[Action] = []
        for s in [s for s in self.sessions.values()
                  if s.tes_mac == mac and (not vn or s.vn == vn) and s.state in ("attached", "reauthenticating")]:
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
        return [Detach(s, ReasonCode.PORT_GONE) for s in gone if s.state in ("attached", "reauthenticating")]

    def change(self, mac: str, changed: dict[str, object]) -> list[Action]:
        """RFC 5176 CoA-Request: the attributes it carries replace the attached TES's (e.g. a new
        WISPr-Bandwidth-Max-Up); the report carries them to the tables, the kernel is re-rated
        in place. The TES is not told: its limits are the network's to hold."""
        changed = {k: v for k, v in changed.items() if k not in SESSION_BOUND}
        out: list[Action] = []
        for s in [s for s in self.sessions.values() if s.tes_mac == mac and s.state in ("attached", "reauthenticating")]:
            new = replace(s, provisioning=replace(s.provisioning or Provisioning(), **changed))  # type: ignore[arg-type]
            self.sessions[s.id] = new
            out.append(Attach(new))
        return out

    def restore(self, now: float, s: Session) -> None:
        """Adopt a session recorded before an agent restart: its TES keeps its attachment."""
        self.sessions[s.id] = replace(s, last_seen=now)


def _identity_response(payload: object) -> bool:
    """Is this an EAP-Response/Identity (what a TES may carry in its REQUEST)?"""
    if not isinstance(payload, bytes):
        return False
    try:
        pkt = eap.decode(payload)
    except ValueError:
        return False
    return pkt.code is eap.EapCode.RESPONSE and pkt.type == eap.TYPE_IDENTITY
