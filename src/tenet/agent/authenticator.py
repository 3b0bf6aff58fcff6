"""The access switch's 802.1X authenticator (seed 000) as a pure state machine.

Multi-auth: one port carries many MACs (a host's VMs behind one link), each authenticated and
provisioned on its own. A MAC speaks EAPOL — in seed 000 it is the *host* speaking for its VM,
with the VM's MAC as the source; a server runs its own wpa_supplicant — or, when it only sends
data and the switch allows it, is tried by MAC Authentication Bypass (User-Name =
User-Password = the MAC). Events go in (an EAPOL frame, a data frame from an unknown MAC, a
RADIUS answer, a Disconnect or CoA, time); actions come out. The I/O lives elsewhere, like
admission.py's.

The relay follows IEEE 802.1X-2004 §8.2 with hostapd's EAP retransmission (eap_relay.py):
every EAP-Request is sent again until answered or given up; a supplicant's duplicate Response
is relayed once. How an attempt ends depends on whose fault it is:

- RADIUS rejects: EAP-Failure, the MAC is held for quietPeriod (60 s), any authorization goes.
- The supplicant stops answering (maxReq retransmissions unanswered): EAP-Failure, any
  authorization goes, and nothing is kept — a MAC that returns starts over with EAPOL-Start.
- The server fails mid-exchange (an error from the RADIUS client, or silence for
  serverTimeout): not the supplicant's fault, so no EAP-Failure and no quiet period — the
  attempt restarts with a fresh EAP-Request/Identity (whose first Access-Request the RADIUS
  client may send to another server), at most `server_restarts` times. A failure of an
  attempt's *first* Access-Request means no server answered at all (the client has already
  tried each): the attempt is dropped silently and the supplicant's own timer (authPeriod)
  starts the next.
- An authorized MAC being re-authenticated keeps its authorization through any server failure
  and is re-authenticated again `server_retry` later ("server dead: keep authorized", as
  switch vendors do): an AAA outage never cuts off users already admitted.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Union

from tenet.aaa.provisioning import Provisioning
from tenet.agent.admission import RadiusAnswer
from tenet.agent.eap_relay import Exchange, Noted, RelayEvent, Timers
from tenet.wire import eap
from tenet.wire.eapol import Eapol, EapolType, of_eap

HELD_PERIOD = Timers().quiet_period  # 802.1X quietPeriod: a rejected MAC is ignored this long

Key = tuple[str, str]  # (port, MAC)


class PaeState(str, Enum):
    """A MAC's authenticator PAE state (802.1X-2004 §8.2.4, the ones multi-auth needs)."""

    CONNECTING = "connecting"  # EAP-Request/Identity sent, no Response yet
    AUTHENTICATING = "authenticating"  # relaying between the supplicant and RADIUS
    AUTHORIZED = "authorized"  # (also while being re-authenticated: it keeps forwarding)
    HELD = "held"  # rejected: ignored for quietPeriod


@dataclass(frozen=True)
class SendEapol:
    port: str
    dst: str  # the supplicant's MAC: multi-auth answers each MAC by its own address
    frame: Eapol


@dataclass(frozen=True)
class AskRadius:
    key: Key
    user_name: str
    eap: bytes | None  # EAP: the packet to relay; MAB: None
    state: bytes | None
    mab: bool = False  # PAP with User-Name = User-Password = the MAC
    tag: int = 0  # hand it back with the answer: only the Access-Request in flight is answered


@dataclass(frozen=True)
class Authorize:
    port: str
    mac: str
    provisioning: Provisioning


@dataclass(frozen=True)
class Deauthorize:
    port: str
    mac: str
    reason: str


Action = Union[SendEapol, AskRadius, Authorize, Deauthorize, Noted]


@dataclass(frozen=True)
class Supplicant:
    port: str
    mac: str
    state: PaeState
    since: float
    method: str = "eap"  # eap | mab
    identity: str = ""
    eap_id: int = 0  # the identifier of the EAP-Request last sent: the only one a Response may carry
    radius_state: bytes | None = None
    provisioning: Provisioning | None = None
    reauth_at: float | None = None
    exchange: Exchange = Exchange()


def mab_name(mac: str) -> str:
    """MAB's User-Name and User-Password: the MAC in lower-case hex without separators, the
    form FreeRADIUS's and most vendors' MAB examples use."""
    return mac.replace(":", "").lower()


@dataclass
class Authenticator:
    mab: bool = False  # try MAB for MACs that send data without EAPOL
    sessions: dict[Key, Supplicant] = field(default_factory=dict)
    next_id: int = 1
    timers: Timers = field(default_factory=Timers)
    tags: int = 0  # the last Access-Request tag handed out

    def _tag(self) -> int:
        self.tags += 1
        return self.tags

    def _request(self, now: float, s: Supplicant, packet: bytes, identifier: int, **changes) -> list[Action]:
        """Send an EAP-Request and wait for its Response."""
        s = replace(s, eap_id=identifier, exchange=s.exchange.asking(now, self.timers, packet), **changes)
        self.sessions[(s.port, s.mac)] = s
        return [SendEapol(s.port, s.mac, Eapol(EapolType.EAP, packet))]

    def _start(self, now: float, port: str, mac: str, restarts: int = 0) -> list[Action]:
        self.next_id = (self.next_id + 1) % 256
        old = self.sessions.get((port, mac))
        s = Supplicant(port, mac, PaeState.CONNECTING, now, provisioning=old.provisioning if old else None,
                       exchange=Exchange(restarts=restarts))
        if old is not None and old.state is PaeState.AUTHORIZED:  # keeps its access while it re-authenticates
            s = replace(s, state=PaeState.AUTHORIZED, identity=old.identity)
        ask = eap.encode(eap.EapPacket(eap.EapCode.REQUEST, self.next_id, eap.TYPE_IDENTITY, b""))
        return self._request(now, s, ask, self.next_id)

    # -- events ------------------------------------------------------------------------
    def on_eapol(self, now: float, port: str, src: str, f: Eapol) -> list[Action]:
        s = self.sessions.get((port, src))
        if s is not None and s.state is PaeState.HELD and not (s.method == "mab" and f.type is EapolType.START):
            return []  # quiet period after a failure (a failed MAB does not stop a real supplicant)
        if f.type is EapolType.START:
            return self._start(now, port, src)
        if f.type is EapolType.LOGOFF:
            if s is None:
                return []
            del self.sessions[(port, src)]
            return [Deauthorize(port, src, "logoff")] if s.provisioning is not None else []
        if f.type is not EapolType.EAP or s is None:
            return []
        try:
            pkt = f.eap
        except ValueError:
            return []
        if pkt.code is not eap.EapCode.RESPONSE:
            return []
        why = s.exchange.judge(s.eap_id, pkt.identifier)
        if why is not None:  # a retransmission of what the server is asked already, or stale / forged
            return [Noted(why, src)]
        if s.exchange.rounds >= self.timers.max_rounds:
            return self._fail(now, s, f"more than {self.timers.max_rounds} EAP rounds")
        identity = pkt.data.decode(errors="replace") if pkt.type == eap.TYPE_IDENTITY else s.identity
        state = PaeState.AUTHENTICATING if s.state is PaeState.CONNECTING else s.state
        tag = self._tag()
        self.sessions[(port, src)] = replace(s, identity=identity, state=state, method="eap",
                                             exchange=s.exchange.relaying(now, tag))
        return [AskRadius((port, src), identity, f.body, s.radius_state, tag=tag)]

    def on_data(self, now: float, port: str, src: str) -> list[Action]:
        """A frame from a MAC with no session (the kernel punts the first one): MAB, if allowed."""
        if not self.mab or (port, src) in self.sessions:
            return []
        tag = self._tag()
        self.sessions[(port, src)] = Supplicant(port, src, PaeState.AUTHENTICATING, now, method="mab",
                                                exchange=Exchange().relaying(now, tag))
        return [AskRadius((port, src), mab_name(src), None, None, mab=True, tag=tag)]

    def on_radius(self, now: float, key: Key, answer: RadiusAnswer, tag: int | None = None) -> list[Action]:
        """The server's answer to Access-Request `tag` (None: to whichever is in flight)."""
        s = self.sessions.get(key)
        if s is None or not s.exchange.answers(tag):
            return []  # the attempt it belonged to is over (restarted, timed out, logged off)
        port, mac = key
        if answer.code == "error":
            return self._server_failed(now, s, answer.error or "RADIUS unavailable")
        if answer.code == "challenge" and answer.eap and s.method == "eap":
            try:
                identifier = eap.decode(answer.eap).identifier
            except ValueError:
                return self._fail(now, s, "RADIUS sent a malformed EAP packet")
            return self._request(now, s, answer.eap, identifier, radius_state=answer.state)
        if answer.code == "accept" and answer.provisioning is not None:
            p = answer.provisioning
            reauth = now + p.session_timeout if p.session_timeout else None
            self.sessions[key] = replace(s, state=PaeState.AUTHORIZED, provisioning=p, reauth_at=reauth,
                                         radius_state=None, exchange=Exchange(),
                                         identity=p.user_name or s.identity)  # PEAP/TTLS: the inner user, not "anonymous"
            out: list[Action] = []
            if s.method == "eap":
                out.append(SendEapol(port, mac, of_eap(eap.EapPacket(eap.EapCode.SUCCESS, s.eap_id, None))))
            if p != s.provisioning or s.state is not PaeState.AUTHORIZED:
                out.append(Authorize(port, mac, p))
            return out
        return self._fail(now, s, "access rejected")

    def _fail(self, now: float, s: Supplicant, why: str) -> list[Action]:
        """Rejected: EAP-Failure, no authorization, held for quietPeriod."""
        out: list[Action] = []
        if s.method == "eap":
            out.append(SendEapol(s.port, s.mac, of_eap(eap.EapPacket(eap.EapCode.FAILURE, s.eap_id, None))))
        if s.provisioning is not None:
            out.append(Deauthorize(s.port, s.mac, why))
        self.sessions[(s.port, s.mac)] = Supplicant(s.port, s.mac, PaeState.HELD, now, method=s.method)
        return out

    def _supplicant_gone(self, s: Supplicant) -> list[Action]:
        """No Response after maxReq retransmissions: EAP-Failure (should it still listen), no
        authorization, and nothing kept — not even a quiet period for a MAC that may be gone."""
        del self.sessions[(s.port, s.mac)]
        out: list[Action] = [Noted(RelayEvent.SUPPLICANT_TIMEOUT, s.mac),
                             SendEapol(s.port, s.mac, of_eap(eap.EapPacket(eap.EapCode.FAILURE, s.eap_id, None)))]
        if s.provisioning is not None:
            out.append(Deauthorize(s.port, s.mac, "no answer to re-authentication"))
        return out

    def _server_failed(self, now: float, s: Supplicant, why: str) -> list[Action]:
        """RADIUS failed this attempt: never the supplicant's fault (see the module's doc)."""
        key = (s.port, s.mac)
        out: list[Action] = [Noted(RelayEvent.SERVER_TIMEOUT, s.mac, why)]
        if s.state is PaeState.AUTHORIZED:  # server dead: keep authorized, try again later
            self.sessions[key] = replace(s, radius_state=None, exchange=Exchange(),
                                         reauth_at=now + self.timers.server_retry)
            return out
        if s.method == "eap" and s.exchange.rounds > 1 and s.exchange.restarts < self.timers.server_restarts:
            return out + [Noted(RelayEvent.RESTART, s.mac)] + self._start(now, s.port, s.mac, s.exchange.restarts + 1)
        del self.sessions[key]  # no server answered at all: no verdict, no hold; the supplicant asks again
        return out

    def disconnect(self, mac: str) -> list[Action]:
        """RFC 5176 Disconnect-Request for a MAC: cut it off everywhere. Empty: not found (NAK)."""
        out: list[Action] = []
        for key, s in list(self.sessions.items()):
            if s.mac == mac and s.provisioning is not None:
                del self.sessions[key]
                out.append(Deauthorize(s.port, s.mac, "disconnect"))
        return out

    def change(self, mac: str, provisioning: Provisioning) -> list[Action]:
        """RFC 5176 CoA-Request: new provisioning for an authorized MAC, applied live."""
        out: list[Action] = []
        for key, s in list(self.sessions.items()):
            if s.mac == mac and s.state is PaeState.AUTHORIZED:
                self.sessions[key] = replace(s, provisioning=provisioning)
                out.append(Authorize(s.port, s.mac, provisioning))
        return out

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for key, s in list(self.sessions.items()):
            ex = s.exchange
            if s.state is PaeState.HELD:
                if now - s.since >= self.timers.quiet_period:
                    del self.sessions[key]
            elif ex.server_late(now, self.timers):
                out += self._server_failed(now, s, f"no answer from RADIUS in {self.timers.server_timeout:g} s")
            elif ex.supplicant_late(now) and ex.request is not None:
                if ex.sent >= self.timers.max_req:
                    out += self._supplicant_gone(s)
                else:
                    self.sessions[key] = replace(s, exchange=ex.again(now, self.timers))
                    out += [Noted(RelayEvent.RETRANSMIT, s.mac), SendEapol(s.port, s.mac, Eapol(EapolType.EAP, ex.request))]
            elif s.state is PaeState.AUTHORIZED and not ex.running and s.reauth_at is not None and now >= s.reauth_at:
                if s.method == "mab":
                    tag = self._tag()
                    self.sessions[key] = replace(s, reauth_at=None, exchange=Exchange().relaying(now, tag))
                    out.append(AskRadius(key, mab_name(s.mac), None, None, mab=True, tag=tag))
                else:
                    out += self._start(now, s.port, s.mac)
        return out

    def restore(self, s: Supplicant) -> None:
        """Adopt an authorization recorded before an agent restart (nobody re-authenticates)."""
        self.sessions[(s.port, s.mac)] = replace(s, state=PaeState(s.state))
