"""The access switch's 802.1X authenticator (seed 000) as a pure state machine.

Multi-auth: one port carries many MACs (a host's VMs behind one link), each authenticated and
provisioned on its own. A MAC speaks EAPOL — in seed 000 it is the *host* speaking for its VM,
with the VM's MAC as the source — or, when it only sends data and the switch allows it, is
tried by MAC Authentication Bypass (User-Name = User-Password = the MAC). Events go in (an
EAPOL frame, a data frame from an unknown MAC, a RADIUS answer, a Disconnect or CoA, time);
actions come out. The I/O lives elsewhere, like admission.py's.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Union

from tenet.aaa.provisioning import Provisioning
from tenet.agent.admission import RadiusAnswer
from tenet.wire import eap
from tenet.wire.eapol import Eapol, EapolType, of_eap

HELD_PERIOD = 60.0  # 802.1X quietPeriod: a rejected MAC is ignored this long
TX_PERIOD = 30.0  # Request-Identity is repeated this often while nobody answers …
MAX_REQ = 2  # … this many times, then the attempt is dropped
AUTH_TIMEOUT = 30.0  # an unfinished exchange is dropped after this
REAUTH_RETRY = 30.0  # s: a re-authentication RADIUS could not answer is tried again after this

Key = tuple[str, str]  # (port, MAC)


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


Action = Union[SendEapol, AskRadius, Authorize, Deauthorize]


@dataclass(frozen=True)
class Supplicant:
    port: str
    mac: str
    state: str  # connecting | authenticating | authorized | held
    since: float
    method: str = "eap"  # eap | mab
    identity: str = ""
    eap_id: int = 0
    radius_state: bytes | None = None
    provisioning: Provisioning | None = None
    reauth_at: float | None = None
    requests: int = 1  # Request-Identity sent while connecting


def mab_name(mac: str) -> str:
    """MAB's User-Name and User-Password: the MAC in lower-case hex without separators, the
    form FreeRADIUS's and most vendors' MAB examples use."""
    return mac.replace(":", "").lower()


@dataclass
class Authenticator:
    mab: bool = False  # try MAB for MACs that send data without EAPOL
    sessions: dict[Key, Supplicant] = field(default_factory=dict)
    next_id: int = 1

    def _request_identity(self, s: Supplicant) -> SendEapol:
        return SendEapol(s.port, s.mac, of_eap(eap.EapPacket(eap.EapCode.REQUEST, s.eap_id, eap.TYPE_IDENTITY, b"")))

    def _start(self, now: float, port: str, mac: str) -> list[Action]:
        self.next_id = (self.next_id + 1) % 256
        old = self.sessions.get((port, mac))
        s = Supplicant(port, mac, "connecting", now, eap_id=self.next_id,
                       provisioning=old.provisioning if old else None)
        if old is not None and old.state == "authorized":  # keeps its access while it re-authenticates
            s = replace(s, state="authorized", reauth_at=None)
        self.sessions[(port, mac)] = s
        return [self._request_identity(s)]

    # -- events ------------------------------------------------------------------------
    def on_eapol(self, now: float, port: str, src: str, f: Eapol) -> list[Action]:
        s = self.sessions.get((port, src))
        if s is not None and s.state == "held" and not (s.method == "mab" and f.type is EapolType.START):
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
        if pkt.code is not eap.EapCode.RESPONSE or pkt.identifier != s.eap_id:
            return []  # not an answer to what we asked: stale or forged
        identity = pkt.data.decode(errors="replace") if pkt.type == eap.TYPE_IDENTITY else s.identity
        state = "authenticating" if s.state == "connecting" else s.state
        self.sessions[(port, src)] = replace(s, identity=identity, state=state, method="eap")
        return [AskRadius((port, src), identity, f.body, s.radius_state)]

    def on_data(self, now: float, port: str, src: str) -> list[Action]:
        """A frame from a MAC with no session (the kernel punts the first one): MAB, if allowed."""
        if not self.mab or (port, src) in self.sessions:
            return []
        self.sessions[(port, src)] = Supplicant(port, src, "authenticating", now, method="mab")
        return [AskRadius((port, src), mab_name(src), None, None, mab=True)]

    def on_radius(self, now: float, key: Key, answer: RadiusAnswer) -> list[Action]:
        s = self.sessions.get(key)
        if s is None:
            return []
        port, mac = key
        if answer.code == "error" and s.state == "authorized":
            # re-authenticating (EAP or MAB) and RADIUS did not answer: no verdict on the MAC,
            # which keeps its authorization through the outage and is asked again later
            self.sessions[key] = replace(s, radius_state=None, reauth_at=now + REAUTH_RETRY)
            return []
        if answer.code == "challenge" and answer.eap and s.method == "eap":
            try:
                self.sessions[key] = replace(s, radius_state=answer.state, eap_id=eap.decode(answer.eap).identifier)
            except ValueError:
                return self._fail(now, s, "RADIUS sent a malformed EAP packet")
            return [SendEapol(port, mac, Eapol(EapolType.EAP, answer.eap))]
        if answer.code == "accept" and answer.provisioning is not None:
            p = answer.provisioning
            reauth = now + p.session_timeout if p.session_timeout else None
            self.sessions[key] = replace(s, state="authorized", provisioning=p, reauth_at=reauth, radius_state=None)
            out: list[Action] = []
            if s.method == "eap":
                out.append(SendEapol(port, mac, of_eap(eap.EapPacket(eap.EapCode.SUCCESS, s.eap_id, None))))
            if p != s.provisioning or s.state != "authorized":
                out.append(Authorize(port, mac, p))
            return out
        return self._fail(now, s, answer.error or "access rejected")

    def _fail(self, now: float, s: Supplicant, why: str) -> list[Action]:
        out: list[Action] = []
        if s.method == "eap":
            out.append(SendEapol(s.port, s.mac, of_eap(eap.EapPacket(eap.EapCode.FAILURE, s.eap_id, None))))
        if s.provisioning is not None:
            out.append(Deauthorize(s.port, s.mac, why))
        self.sessions[(s.port, s.mac)] = Supplicant(s.port, s.mac, "held", now, method=s.method)
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
            if s.mac == mac and s.state == "authorized":
                self.sessions[key] = replace(s, provisioning=provisioning)
                out.append(Authorize(s.port, s.mac, provisioning))
        return out

    def tick(self, now: float) -> list[Action]:
        out: list[Action] = []
        for key, s in list(self.sessions.items()):
            if s.state == "held" and now - s.since >= HELD_PERIOD:
                del self.sessions[key]
            elif s.state == "connecting" and now - s.since >= TX_PERIOD * s.requests:
                if s.requests > MAX_REQ:
                    del self.sessions[key]
                else:
                    self.sessions[key] = replace(s, requests=s.requests + 1)
                    out.append(self._request_identity(s))
            elif s.state == "authenticating" and now - s.since >= AUTH_TIMEOUT:
                del self.sessions[key]
            elif s.state == "authorized" and s.reauth_at is not None and now >= s.reauth_at:
                if s.method == "mab":
                    self.sessions[key] = replace(s, reauth_at=None)
                    out.append(AskRadius(key, mab_name(s.mac), None, None, mab=True))
                else:
                    out += self._start(now, s.port, s.mac)
        return out

    def restore(self, s: Supplicant) -> None:
        """Adopt an authorization recorded before an agent restart (nobody re-authenticates)."""
        self.sessions[(s.port, s.mac)] = s
