"""RADIUS client for EAP pass-through (RFC 3579) over pyrad.

Every request carries EAP-Message and Message-Authenticator; every reply must carry a valid
Message-Authenticator and Response Authenticator (pyrad's enforce_ma: an invalid reply is
ignored, so a wrong shared secret ends as a timeout that says so).

`RadiusMux` keeps many exchanges in flight on one socket inside the NVE's event loop — no
thread per request, no GIL hand-offs — matching replies by RADIUS identifier.
`RadiusClient.exchange` (tools, the benchmark's ceiling) blocks on the same code with one
exchange in flight, so the ceiling and the NVE build and check packets alike.
"""
from __future__ import annotations

import os
import select
import socket
import struct
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path

from pyrad import packet
from pyrad.dictionary import Dictionary

from tenet.aaa.provisioning import Provisioning, ProvisioningError, attributes_of, from_attributes
from tenet.wire import eap

DICTIONARY = Path(__file__).with_name("dictionary")


def calling_station_id(mac: str) -> str:
    """RFC 3580's form of a MAC in Calling-Station-Id: AA-BB-CC-DD-EE-FF."""
    return mac.replace(":", "-").upper()
EAP_CHUNK = 253
TICK = 0.05  # how often a blocking exchange looks at its retry timer


class RadiusError(RuntimeError):
    pass


class RadiusTimeout(RadiusError):
    pass


@dataclass(frozen=True)
class RadiusReply:
    code: str  # challenge | accept | reject
    eap_message: bytes | None
    state: bytes | None
    attributes: dict
    provisioning: Provisioning | None


# RFC 2865/3579 attribute codes of what the NVE sends; values are encoded here (string,
# octets, integer, ipaddr), so building a request needs no dictionary lookups
USER_NAME, USER_PASSWORD, NAS_IP_ADDRESS, STATE, CALLING_STATION_ID, NAS_IDENTIFIER = 1, 2, 4, 24, 31, 32
NAS_PORT_TYPE, EAP_MESSAGE, NAS_PORT_ID = 61, 79, 87
ETHERNET = struct.pack("!I", 15)  # NAS-Port-Type


class RadiusClient:
    """What an exchange needs: the server, the shared secret, the dictionary replies are
    decoded with, and who we are (NAS-Identifier, NAS-IP-Address)."""

    def __init__(self, server: str, secret: str, port: int = 1812, timeout: float = 2.0, retries: int = 2,
                 nas_ip: str = "", nas_identifier: str = "tenet") -> None:
        self.server, self.port, self.secret = server, port, secret.encode()
        self.dict = Dictionary(str(DICTIONARY))
        self.timeout, self.retries = timeout, retries
        self.nas_ip, self.nas_identifier = nas_ip, nas_identifier
        self._mux: RadiusMux | None = None  # exchange()'s, made on first use

    def request(self, user_name: str, eap_message: bytes | None, state: bytes | None, calling: str, port_id: str,
                password: str | None = None) -> packet.AuthPacket:
        """An Access-Request relaying one EAP packet — or, for MAC Authentication Bypass, PAP
        with `password` (hidden with the shared secret and this request's authenticator).
        pyrad assembles it and adds the Message-Authenticator; the attributes are set by
        code, already encoded (by name, pyrad's dictionary encoding was half the cost)."""
        # os.urandom: pyrad's default draws the 16-byte authenticator one byte per getrandom call
        req = packet.AuthPacket(code=packet.AccessRequest, secret=self.secret, authenticator=os.urandom(16))
        put = lambda code, *values: OrderedDict.__setitem__(req, code, list(values))  # noqa: E731
        put(USER_NAME, user_name.encode())
        if password is not None:
            put(USER_PASSWORD, req.PwCrypt(password))
        if eap_message:
            put(EAP_MESSAGE, *(eap_message[i : i + EAP_CHUNK] for i in range(0, len(eap_message), EAP_CHUNK)))
        if state:
            put(STATE, state)
        if calling:
            put(CALLING_STATION_ID, calling.encode())
        if port_id:
            put(NAS_PORT_ID, port_id.encode())
        put(NAS_PORT_TYPE, ETHERNET)
        put(NAS_IDENTIFIER, self.nas_identifier.encode())
        if self.nas_ip:
            put(NAS_IP_ADDRESS, socket.inet_aton(self.nas_ip))
        req.add_message_authenticator()
        return req

    def exchange(self, user_name: str, eap_message: bytes, state: bytes | None = None,
                 calling_station_id: str = "", nas_port_id: str = "") -> RadiusReply:
        """Relay one EAP packet and wait for the server's verdict and its EAP answer: the
        multiplexer's code path, with one exchange in flight."""
        if self._mux is None:
            self._mux = RadiusMux(self, self.timeout, self.retries)
        mux = self._mux
        mux.submit(time.monotonic(), None, user_name, eap_message, state, calling_station_id, nas_port_id)
        while True:
            select.select([mux], [], [], TICK)
            now = time.monotonic()
            for _, answer in mux.on_readable(now) + mux.tick(now):
                if isinstance(answer, Exception):
                    raise answer
                return answer

    def eap_md5_login(self, identity: str, password: str) -> RadiusReply:
        """A whole EAP-MD5 authentication as a supplicant would run it (the benchmark's ceiling)."""
        reply = self.exchange(identity, eap.encode(eap.identity_response(1, identity)))
        for _ in range(4):
            if reply.code != "challenge" or not reply.eap_message:
                return reply
            req = eap.decode(reply.eap_message)
            if req.type != eap.TYPE_MD5:
                answer = eap.nak(req.identifier)
            else:
                challenge, _ = eap.parse_md5(req)
                answer = eap.md5_response(req.identifier, password.encode(), challenge)
            reply = self.exchange(identity, eap.encode(answer), reply.state)
        return reply


def _no_reply(server: str, port: int) -> str:
    return (f"no valid reply from RADIUS server {server}:{port} "
            "(down, unreachable, or a wrong shared secret: replies failing the authenticator checks are dropped)")


def _verdict(reply, server: str) -> RadiusReply:
    """An authenticated reply reduced to what the NVE acts on. A challenge carries nothing
    else we use, so only an Accept or a Reject has its attributes decoded by name."""
    raw = lambda code: OrderedDict.get(reply, code, ())  # noqa: E731
    message = b"".join(raw(EAP_MESSAGE)) or None
    st = next(iter(raw(STATE)), None)
    if reply.code == packet.AccessChallenge:
        return RadiusReply("challenge", message, st, {}, None)
    kind = "Access-Accept" if reply.code == packet.AccessAccept else "Access-Reject"
    try:
        attrs = attributes_of(reply)
        prov = from_attributes(attrs) if reply.code == packet.AccessAccept else None
    except ProvisioningError as e:
        raise RadiusError(f"{kind} from {server} is unusable: {e}") from None
    return RadiusReply("accept" if reply.code == packet.AccessAccept else "reject", message, st, attrs, prov)


def read_reply(raw: bytes, request: packet.AuthPacket, secret: bytes, dictionary: Dictionary,
               server: str) -> RadiusReply | RadiusError | None:
    """A datagram from the server read as the reply to `request`: its verdict, a RadiusError
    (authentic but unusable), or None when it is malformed, forged or mis-signed (dropped: the
    real reply may still come). Apart from the socket, so that it can be fuzzed."""
    try:
        reply = packet.AuthPacket(packet=raw, secret=secret, authenticator=request.authenticator, dict=dictionary)
        valid = request.VerifyReply(reply, raw, enforce_ma=True)
    except Exception:  # malformed: as good as unsigned
        valid = False
    if not valid:
        return None
    try:
        return _verdict(reply, server)
    except RadiusError as e:
        return e


@dataclass
class _InFlight:
    tag: object
    packet: object
    raw: bytes
    deadline: float
    tries: int = 1


@dataclass
class RadiusMux:
    """Exchanges in flight on one connected UDP socket, driven by the caller's loop: `submit`,
    then `on_readable` when `fileno()` is readable and `tick` now and then; both return
    (tag, RadiusReply | RadiusError) pairs. At most 256 in flight (the identifier is one
    byte); more wait their turn in order."""

    client: RadiusClient
    timeout: float = 2.0
    retries: int = 2
    sock: socket.socket = field(init=False)
    inflight: dict[int, _InFlight] = field(default_factory=dict, init=False)
    waiting: deque = field(default_factory=deque, init=False)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect((self.client.server, self.client.port))  # replies from anyone else never reach us
        self._next = os.urandom(1)[0]

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def submit(self, now: float, tag: object, user_name: str, eap_message: bytes | None, state: bytes | None,
               calling_station_id: str = "", nas_port_id: str = "", password: str | None = None) -> None:
        self.waiting.append((tag, (user_name, eap_message, state, calling_station_id, nas_port_id, password)))
        self._start(now)

    def _start(self, now: float) -> None:
        while self.waiting and len(self.inflight) < 256:
            while self._next in self.inflight:
                self._next = (self._next + 1) % 256
            tag, args = self.waiting.popleft()
            pkt = self.client.request(*args)
            pkt.id = self._next
            raw = pkt.RequestPacket()
            self.inflight[pkt.id] = _InFlight(tag, pkt, raw, now + self.timeout)
            self._send(raw)
            self._next = (self._next + 1) % 256

    def _send(self, raw: bytes) -> None:
        try:
            self.sock.send(raw)
        except OSError:
            pass  # unreachable for now: the retry or the timeout decides

    def on_readable(self, now: float) -> list[tuple[object, RadiusReply | RadiusError]]:
        out: list[tuple[object, RadiusReply | RadiusError]] = []
        while True:
            try:
                raw = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # ICMP port unreachable and the like: the timeout reports it
                continue
            if len(raw) < 20 or raw[1] not in self.inflight:
                continue
            f = self.inflight[raw[1]]
            answer = read_reply(raw, f.packet, self.client.secret, self.client.dict, self.client.server)
            if answer is None:
                continue  # a forged or mis-signed reply is dropped; the real one may still come
            del self.inflight[raw[1]]
            out.append((f.tag, answer))
        self._start(now)
        return out

    def tick(self, now: float) -> list[tuple[object, RadiusReply | RadiusError]]:
        out: list[tuple[object, RadiusReply | RadiusError]] = []
        for rid, f in list(self.inflight.items()):
            if now < f.deadline:
                continue
            if f.tries < self.retries:
                f.tries += 1
                f.deadline = now + self.timeout
                self._send(f.raw)  # the same bytes: a late reply to either attempt is valid
            else:
                del self.inflight[rid]
                out.append((f.tag, RadiusTimeout(_no_reply(self.client.server, self.client.port))))
        self._start(now)
        return out
