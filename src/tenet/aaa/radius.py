"""RADIUS client for EAP pass-through (RFC 3579) over pyrad.

BlastRADIUS (CVE-2024-3596): every Access-Request carries Message-Authenticator as its first
attribute; every reply must carry a valid Response Authenticator and a valid
Message-Authenticator (wherever it sits: FreeRADIUS 3.2.1 puts it after EAP-Message, and the
HMAC covers the whole reply either way). Anything else is dropped and counted by reason
(`DropReason`), so a wrong shared secret ends as a timeout that says so, and a forgery shows
in the metrics.

`RadiusMux` keeps many exchanges in flight inside the NVE's event loop — no thread per
request, no GIL hand-offs — on one socket per server, matching replies by RADIUS identifier,
and moves exchanges between servers as aaa/failover.py decides. `RadiusClient.exchange`
(tools, the benchmark's ceiling) blocks on the same code with one exchange in flight, so the
ceiling and the NVE build and check packets alike.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import select
import socket
import struct
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from pyrad import packet
from pyrad.dictionary import Dictionary

from tenet.aaa.failover import Failover, RadiusPolicy, RadiusServer
from tenet.aaa.provisioning import Provisioning, ProvisioningError, attributes_of, from_attributes
from tenet.wire import eap

log = logging.getLogger("tenet.radius")
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
USER_NAME, USER_PASSWORD, NAS_IP_ADDRESS, FRAMED_MTU, STATE, CALLING_STATION_ID, NAS_IDENTIFIER = 1, 2, 4, 12, 24, 31, 32
PROXY_STATE, NAS_PORT_TYPE, EAP_MESSAGE, MESSAGE_AUTHENTICATOR, NAS_PORT_ID = 33, 61, 79, 80, 87
ETHERNET = struct.pack("!I", 15)  # NAS-Port-Type
ANSWERS = (packet.AccessAccept, packet.AccessReject, packet.AccessChallenge)


class DropReason(str, Enum):
    """Why a datagram from a RADIUS server was not taken as a reply (the metric's label)."""

    MALFORMED = "malformed"  # not a RADIUS packet, its attributes overrun, or not an Access reply
    BAD_AUTHENTICATOR = "bad_authenticator"  # Response Authenticator wrong: another secret, or forged
    NO_MESSAGE_AUTHENTICATOR = "no_message_authenticator"  # what a BlastRADIUS forgery looks like
    BAD_MESSAGE_AUTHENTICATOR = "bad_message_authenticator"  # wrong HMAC, wrong length, or two of them
    PROXY_STATE = "unexpected_proxy_state"  # we never send Proxy-State: one in a reply is the attack's gadget
    UNMATCHED = "unmatched"  # no request in flight with its identifier (late, duplicate, or stray)


def check_reply(raw: bytes, request_authenticator: bytes, secret: bytes, require_ma: bool = True) -> DropReason | None:
    """None if `raw` is an authentic reply to the request whose authenticator is given, else
    why not (pure: the checks of RFC 2865 §3 and RFC 3579 §3.2, in one pass over the bytes).
    `require_ma`: False only for Status-Server answers, which FreeRADIUS 3.2.1 sends bare."""
    n = len(raw)
    if n < 20:
        return DropReason.MALFORMED
    length = int.from_bytes(raw[2:4], "big")
    if not 20 <= length <= n:
        return DropReason.MALFORMED
    raw = raw[:length]  # octets past Length are padding (RFC 2865 §3)
    ma_at, proxy_state, i = -1, False, 20
    while i < length:
        if i + 2 > length or raw[i + 1] < 2 or i + raw[i + 1] > length:
            return DropReason.MALFORMED
        kind, size = raw[i], raw[i + 1]
        if kind == MESSAGE_AUTHENTICATOR:
            if ma_at >= 0 or size != 18:
                return DropReason.BAD_MESSAGE_AUTHENTICATOR
            ma_at = i + 2
        elif kind == PROXY_STATE:
            proxy_state = True
        i += size
    expected = hashlib.md5(raw[:4] + request_authenticator + raw[20:] + secret).digest()
    if not hmac.compare_digest(expected, raw[4:20]):
        return DropReason.BAD_AUTHENTICATOR
    if ma_at < 0:
        if require_ma:
            return DropReason.NO_MESSAGE_AUTHENTICATOR
    else:
        signed = raw[:4] + request_authenticator + raw[20:ma_at] + bytes(16) + raw[ma_at + 16:]
        if not hmac.compare_digest(hmac.new(secret, signed, "md5").digest(), raw[ma_at:ma_at + 16]):
            return DropReason.BAD_MESSAGE_AUTHENTICATOR
    if proxy_state:
        return DropReason.PROXY_STATE
    return None


def framed_mtu(link_mtu: int, carrier_overhead: int) -> int:
    """Framed-MTU for EAP relayed over a link of `link_mtu` octets whose carrier adds
    `carrier_overhead` before the EAP packet (EAPOL: 4; NVO3 over L2: 16; over UDP: 44).
    RFC 3580 §3.20 has the server subtract the 4 EAPOL octets itself, but FreeRADIUS takes
    Framed-MTU as its EAP-TLS fragment size and adds its own 10 octets of framing (EAP header
    4, type 1, flags 1, TLS message length 4): subtracting both keeps every fragment inside
    one frame with either reading. Ethernet 1500 over EAPOL gives 1486 (hostapd sends a flat
    1400). At least 64 (RFC 2865's floor)."""
    return max(64, link_mtu - carrier_overhead - EAP_TLS_FRAMING)


EAP_TLS_FRAMING = 10
CARRIER_EAPOL, CARRIER_NVO3_L2, CARRIER_NVO3_UDP = 4, 16, 44  # 16: NVO3 header 12 + TLV 4; 44: + IPv4 20 + UDP 8


class RadiusClient:
    """What an exchange needs: the server, the shared secret, the dictionary replies are
    decoded with, and who we are (NAS-Identifier, NAS-IP-Address)."""

    def __init__(self, server: str, secret: str, port: int = 1812, timeout: float = 2.0, retries: int = 1,
                 nas_ip: str = "", nas_identifier: str = "tenet") -> None:
        self.server, self.port, self.secret = server, port, secret.encode()
        self.dict = Dictionary(str(DICTIONARY))
        self.timeout, self.retries = timeout, retries
        self.nas_ip, self.nas_identifier = nas_ip, nas_identifier
        self._mux: RadiusMux | None = None  # exchange()'s, made on first use

    def request(self, user_name: str, eap_message: bytes | None, state: bytes | None, calling: str, port_id: str,
                password: str | None = None, mtu: int = 0) -> packet.AuthPacket:
        """An Access-Request relaying one EAP packet — or, for MAC Authentication Bypass, PAP
        with `password` (hidden with the shared secret and this request's authenticator).
        `mtu`: Framed-MTU, sent with EAP (see framed_mtu). pyrad assembles it and puts the
        Message-Authenticator first (pyrad 2.6 `add_message_authenticator`, computed when the
        packet is encoded); the attributes are set by code, already encoded (by name, pyrad's
        dictionary encoding was half the cost)."""
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
        if eap_message and mtu:
            put(FRAMED_MTU, struct.pack("!I", mtu))
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

    def status_server(self) -> packet.AuthPacket:
        """A Status-Server (RFC 5997): asks whether the server is alive, authenticates
        nothing. Message-Authenticator is its only attribute besides NAS-Identifier."""
        req = packet.AuthPacket(code=packet.StatusServer, secret=self.secret, authenticator=os.urandom(16))
        OrderedDict.__setitem__(req, NAS_IDENTIFIER, [self.nas_identifier.encode()])
        req.add_message_authenticator()
        return req

    def exchange(self, user_name: str, eap_message: bytes, state: bytes | None = None,
                 calling_station_id: str = "", nas_port_id: str = "") -> RadiusReply:
        """Relay one EAP packet and wait for the server's verdict and its EAP answer: the
        multiplexer's code path, with one exchange in flight."""
        if self._mux is None:
            self._mux = RadiusMux(self, RadiusPolicy(self.timeout, self.retries))
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


def _no_reply(servers: Sequence[RadiusServer]) -> str:
    return (f"no valid reply from RADIUS server{'s' if len(servers) > 1 else ''} {', '.join(map(str, servers))} "
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
    answer = _read(raw, request, secret, dictionary, server)
    return None if isinstance(answer, DropReason) else answer


def _read(raw: bytes, request: packet.AuthPacket, secret: bytes, dictionary: Dictionary,
          server: str) -> RadiusReply | RadiusError | DropReason:
    fault = check_reply(raw, request.authenticator, secret)
    if fault is not None:
        return fault
    if raw[0] not in ANSWERS:
        return DropReason.MALFORMED
    try:
        reply = packet.AuthPacket(packet=raw[:int.from_bytes(raw[2:4], "big")], secret=secret,
                                  authenticator=request.authenticator, dict=dictionary)
    except Exception:  # authentic but not decodable (a vendor attribute's framing, say)
        return DropReason.MALFORMED
    try:
        return _verdict(reply, server)
    except RadiusError as e:
        return e


PROBE = "status-server"  # the tag of a Status-Server probe: never handed to the caller
PIN_TTL = 120.0  # s a State's server is remembered (FreeRADIUS forgets a State after 60 s)


@dataclass
class _Pending:
    """An exchange's packet, waiting for (or on) a server."""

    tag: object
    args: tuple  # RadiusClient.request's
    tried: frozenset[int]  # servers it has been sent to
    mid: bool  # carries a State: bound to the server that gave it


@dataclass
class _InFlight:
    pending: _Pending
    packet: packet.AuthPacket
    raw: bytes
    deadline: float
    tries: int = 1


class _Channel:
    """One server's connected socket and what is in flight on it. At most 256 exchanges (the
    identifier is one byte); more wait their turn in order."""

    def __init__(self, server: RadiusServer) -> None:
        self.server = server
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect((server.ip, server.port))  # replies from anyone else never reach us
        self.inflight: dict[int, _InFlight] = {}
        self.waiting: deque[_Pending] = deque()
        self.next = os.urandom(1)[0]

    def send(self, raw: bytes) -> None:
        try:
            self.sock.send(raw)
        except OSError:
            pass  # unreachable for now: the retry or the timeout decides

    def add(self, now: float, timeout: float, pending: _Pending, pkt: packet.AuthPacket) -> None:
        while self.next in self.inflight:
            self.next = (self.next + 1) % 256
        pkt.id = self.next
        raw = pkt.RequestPacket()
        self.inflight[pkt.id] = _InFlight(pending, pkt, raw, now + timeout)
        self.send(raw)
        self.next = (self.next + 1) % 256


class RadiusMux:
    """Exchanges in flight to one or more servers (primary first), driven by the caller's
    loop: `submit`, then `on_readable` when `fileno()` is readable (an epoll over the
    servers' sockets) and `tick` now and then; both return (tag, RadiusReply | RadiusError)
    pairs. Which server, and when an exchange may move: aaa/failover.py.

    Counted for the caller's metrics: `dropped` (server, DropReason) -> replies dropped;
    `deaths` server -> times it was declared dead; `failovers` server -> exchanges moved
    away from it."""

    def __init__(self, client: RadiusClient, policy: RadiusPolicy | None = None,
                 servers: Sequence[RadiusServer] = ()) -> None:
        self.client = client
        self.policy = policy or RadiusPolicy(client.timeout, client.retries)
        self.servers = tuple(servers) or (RadiusServer(client.server, client.port),)
        self.failover = Failover(self.servers, self.policy)
        self.channels = [_Channel(s) for s in self.servers]
        self.poll = select.epoll()
        self.by_fd = {}
        for i, c in enumerate(self.channels):
            self.poll.register(c.sock.fileno(), select.EPOLLIN)
            self.by_fd[c.sock.fileno()] = i
        self.pins: dict[bytes, tuple[int, float]] = {}  # a State -> (the server that issued it, when)
        self.dropped: Counter[tuple[str, DropReason]] = Counter()
        self.deaths: Counter[str] = Counter()
        self.failovers: Counter[str] = Counter()
        self.pruned = 0.0

    def fileno(self) -> int:
        return self.poll.fileno()

    def close(self) -> None:
        for c in self.channels:
            c.sock.close()
        self.poll.close()

    def accepts(self, ip: str) -> bool:
        """Is `ip` one of our servers (RFC 5176 requests are taken from them only)?"""
        return any(s.ip == ip for s in self.servers)

    def submit(self, now: float, tag: object, user_name: str, eap_message: bytes | None, state: bytes | None,
               calling_station_id: str = "", nas_port_id: str = "", password: str | None = None, mtu: int = 0) -> None:
        """A packet of an exchange: with a State, to the server that issued that State (the
        State names the conversation, whatever the caller's tags); else (a first packet) to
        the first live server."""
        pin = self.pins.get(state) if state else None
        i = pin[0] if pin is not None else self.failover.pick(now)
        assert i is not None  # nothing tried yet: some server is always a candidate
        args = (user_name, eap_message, state, calling_station_id, nas_port_id, password, mtu)
        self.channels[i].waiting.append(_Pending(tag, args, frozenset((i,)), bool(state)))
        self._start(now)

    def _start(self, now: float) -> None:
        for c in self.channels:
            while c.waiting and len(c.inflight) < 256:
                p = c.waiting.popleft()
                c.add(now, self.policy.timeout, p, self.client.request(*p.args))

    def on_readable(self, now: float) -> list[tuple[object, RadiusReply | RadiusError]]:
        out: list[tuple[object, RadiusReply | RadiusError]] = []
        for fd, _ in self.poll.poll(0):
            i = self.by_fd[fd]
            c = self.channels[i]
            while True:
                try:
                    raw = c.sock.recv(4096)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # ICMP port unreachable and the like: the timeout reports it
                    continue
                self._reply(now, i, c, raw, out)
        self._start(now)
        return out

    def _reply(self, now: float, i: int, c: _Channel, raw: bytes, out: list) -> None:
        f = c.inflight.get(raw[1]) if len(raw) >= 20 else None
        if f is None:
            self._drop(c, DropReason.UNMATCHED if len(raw) >= 20 else DropReason.MALFORMED)
            return
        if f.pending.tag is PROBE:  # any authentic answer will do: 3.2.1 answers bare
            fault = check_reply(raw, f.packet.authenticator, self.client.secret, require_ma=False)
            if fault is not None:
                self._drop(c, fault)
                return
            del c.inflight[raw[1]]
            if self.failover.answered(i):
                log.warning("RADIUS server %s answers Status-Server again: back in use", c.server)
            return
        answer = _read(raw, f.packet, self.client.secret, self.client.dict, str(c.server))
        if isinstance(answer, DropReason):
            self._drop(c, answer)  # forged or mis-signed: dropped; the real reply may still come
            return
        del c.inflight[raw[1]]
        if self.failover.answered(i):
            log.warning("RADIUS server %s answers again: back in use", c.server)
        if f.pending.mid:
            self.pins.pop(f.pending.args[2], None)  # that State is answered: the next round has its own
        if isinstance(answer, RadiusReply) and answer.code == "challenge" and answer.state:
            self.pins[answer.state] = (i, now)  # the exchange's next packet carries it: to this server only
        out.append((f.pending.tag, answer))

    def _drop(self, c: _Channel, reason: DropReason) -> None:
        self.dropped[(str(c.server), reason)] += 1

    def tick(self, now: float) -> list[tuple[object, RadiusReply | RadiusError]]:
        out: list[tuple[object, RadiusReply | RadiusError]] = []
        for i, c in enumerate(self.channels):
            for rid, f in list(c.inflight.items()):
                if now < f.deadline:
                    continue
                if f.tries <= self.policy.retries:
                    f.tries += 1
                    f.deadline = now + self.policy.timeout
                    c.send(f.raw)  # the same bytes: a late reply to either attempt is valid
                    continue
                del c.inflight[rid]
                self._timed_out(now, i, f.pending, out)
        for i in self.failover.probes(now):
            c = self.channels[i]
            if len(c.inflight) < 256:
                c.add(now, self.policy.timeout, _Pending(PROBE, (), frozenset((i,)), False), self.client.status_server())
            else:
                self.failover.probe_failed(now, i)
        if now - self.pruned > PIN_TTL:
            self.pruned = now
            self.pins = {t: p for t, p in self.pins.items() if now - p[1] < PIN_TTL}
        self._start(now)
        return out

    def _timed_out(self, now: float, i: int, p: _Pending, out: list) -> None:
        server = self.servers[i]
        if p.tag is PROBE:
            self.failover.probe_failed(now, i)
            return
        if self.failover.timed_out(now, i):
            self.deaths[str(server)] += 1
            log.warning("RADIUS server %s is dead: no reply after %d tries; skipped for %gs", server,
                        self.policy.retries + 1, self.policy.dead_time)
        if p.mid:  # its State is this server's: no other can continue the exchange
            self.pins.pop(p.args[2], None)
            out.append((p.tag, RadiusTimeout(_no_reply([server]) + "; the exchange holds its State, so it "
                                             "cannot move to another server: the authenticator starts over")))
            return
        j = self.failover.pick(now, p.tried)
        if j is None:
            out.append((p.tag, RadiusTimeout(_no_reply([self.servers[k] for k in sorted(p.tried)]))))
            return
        self.failovers[str(server)] += 1
        self.channels[j].waiting.append(_Pending(p.tag, p.args, p.tried | {j}, False))


