"""RADIUS accounting packets (RFC 2866, RFC 2869, RFC 3580 §2), built and checked here (pure).

An Accounting-Request carries no secret-derived attribute, so it is assembled byte by byte:
its Request Authenticator is MD5(Code | Identifier | Length | 16 zero octets | attributes |
secret) (RFC 2866 §3), and an Accounting-Response is authentic only if its Response
Authenticator is MD5(Code | Identifier | Length | the request's authenticator | attributes |
secret). Nothing here needs pyrad's dictionary: every attribute's type is fixed by its number.

A retransmission is a new packet (RFC 2866 §5.2, RFC 5080 §2.2.1): Acct-Delay-Time grows, so
the Identifier and the Request Authenticator change with it — `encode` is called again.
"""
from __future__ import annotations

import hashlib
import ipaddress
import struct
from dataclasses import dataclass, field
from enum import IntEnum

ACCOUNTING_REQUEST, ACCOUNTING_RESPONSE = 4, 5
PORT = 1813
MAX_PACKET = 4096
GIGA = 1 << 32  # Acct-*-Gigawords count how often the 32-bit octet counter wrapped (RFC 2869 §5.1)


class AccountingError(ValueError):
    """A record that cannot be encoded, or a packet that is not what it claims."""


class Status(IntEnum):
    """Acct-Status-Type (RFC 2866 §5.1)."""

    START = 1
    STOP = 2
    INTERIM_UPDATE = 3  # RFC 2869 §2.1
    ACCOUNTING_ON = 7
    ACCOUNTING_OFF = 8


class TerminateCause(IntEnum):
    """Acct-Terminate-Cause (RFC 2866 §5.10, RFC 3580 §2.1 for 19..22)."""

    USER_REQUEST = 1
    LOST_CARRIER = 2
    LOST_SERVICE = 3
    IDLE_TIMEOUT = 4
    SESSION_TIMEOUT = 5
    ADMIN_RESET = 6
    ADMIN_REBOOT = 7
    PORT_ERROR = 8
    NAS_ERROR = 9
    NAS_REQUEST = 10
    NAS_REBOOT = 11
    SERVICE_UNAVAILABLE = 15
    SUPPLICANT_RESTART = 19
    REAUTHENTICATION_FAILURE = 20
    PORT_REINITIALIZED = 21
    PORT_ADMINISTRATIVELY_DISABLED = 22


class PortType(IntEnum):
    """NAS-Port-Type (RFC 2865 §5.41): a switch or VM port is Ethernet (RFC 3580 §3.19); a TES
    behind an L3 hop reaches us over a tunnel: Virtual."""

    VIRTUAL = 5
    ETHERNET = 15


class Attr(IntEnum):
    USER_NAME = 1
    NAS_IP_ADDRESS = 4
    FRAMED_IP_ADDRESS = 8
    CLASS = 25
    CALLING_STATION_ID = 31
    NAS_IDENTIFIER = 32
    ACCT_STATUS_TYPE = 40
    ACCT_DELAY_TIME = 41
    ACCT_INPUT_OCTETS = 42
    ACCT_OUTPUT_OCTETS = 43
    ACCT_SESSION_ID = 44
    ACCT_AUTHENTIC = 45
    ACCT_SESSION_TIME = 46
    ACCT_INPUT_PACKETS = 47
    ACCT_OUTPUT_PACKETS = 48
    ACCT_TERMINATE_CAUSE = 49
    ACCT_MULTI_SESSION_ID = 50
    ACCT_INPUT_GIGAWORDS = 52
    ACCT_OUTPUT_GIGAWORDS = 53
    EVENT_TIMESTAMP = 55
    NAS_PORT_TYPE = 61
    NAS_PORT_ID = 87


INTEGERS = {Attr.ACCT_STATUS_TYPE, Attr.ACCT_DELAY_TIME, Attr.ACCT_INPUT_OCTETS, Attr.ACCT_OUTPUT_OCTETS,
            Attr.ACCT_AUTHENTIC, Attr.ACCT_SESSION_TIME, Attr.ACCT_INPUT_PACKETS, Attr.ACCT_OUTPUT_PACKETS,
            Attr.ACCT_TERMINATE_CAUSE, Attr.ACCT_INPUT_GIGAWORDS, Attr.ACCT_OUTPUT_GIGAWORDS, Attr.EVENT_TIMESTAMP,
            Attr.NAS_PORT_TYPE}
ADDRESSES = {Attr.NAS_IP_ADDRESS, Attr.FRAMED_IP_ADDRESS}
OCTETS = {Attr.CLASS}
RADIUS_AUTHENTIC = 1  # Acct-Authentic: the session was authenticated by RADIUS


@dataclass(frozen=True)
class Usage:
    """What a session moved, from the NAS's point of view: input is what the user sent into
    the port, output what the port sent to the user (RFC 2866 §5.3, §5.4)."""

    input_octets: int = 0
    output_octets: int = 0
    input_packets: int = 0
    output_packets: int = 0

    def __post_init__(self) -> None:
        for name in ("input_octets", "output_octets", "input_packets", "output_packets"):
            v = getattr(self, name)
            if type(v) is not int or v < 0:
                raise AccountingError(f"{name} must be a non-negative integer, not {v!r}")


@dataclass(frozen=True, kw_only=True)
class AccountingRecord:
    """One accounting event, before it is a packet: what the NAS reports, not how it is sent."""

    status: Status
    session_id: str  # Acct-Session-Id: unique per session on this NAS, the same in all its records
    event_time: int  # Event-Timestamp, UNIX seconds (RFC 2869 §5.3)
    nas_identifier: str
    nas_ip: str = ""
    user_name: str = ""
    calling_station_id: str = ""  # the MAC, RFC 3580's AA-BB-CC-DD-EE-FF
    nas_port_id: str = ""
    nas_port_type: PortType = PortType.ETHERNET
    framed_ip: str = ""
    classes: tuple[bytes, ...] = ()  # Class attributes of the Access-Accept, echoed (RFC 2865 §5.25)
    multi_session_id: str = ""
    session_time: int | None = None  # Interim-Update and Stop
    usage: Usage | None = None  # Interim-Update and Stop
    cause: TerminateCause | None = None  # Stop only

    def __post_init__(self) -> None:
        if not self.session_id:
            raise AccountingError("Acct-Session-Id is required")
        if (self.cause is not None) != (self.status is Status.STOP):
            raise AccountingError("Acct-Terminate-Cause belongs in a Stop, and only there")
        if self.status in (Status.STOP, Status.INTERIM_UPDATE) and (self.session_time is None or self.usage is None):
            raise AccountingError(f"{self.status.name} needs the session time and usage")
        if self.session_time is not None and not 0 <= self.session_time < GIGA:
            raise AccountingError(f"Acct-Session-Time {self.session_time} out of range")
        if not 0 <= self.event_time < GIGA:
            raise AccountingError(f"Event-Timestamp {self.event_time} out of range")


def attributes(r: AccountingRecord, delay: int = 0) -> list[tuple[int, object]]:
    """The record's attributes in the order they are sent (values not yet encoded)."""
    out: list[tuple[int, object]] = [(Attr.ACCT_STATUS_TYPE, int(r.status)), (Attr.ACCT_SESSION_ID, r.session_id)]
    if r.user_name:
        out.append((Attr.USER_NAME, r.user_name))
    if r.calling_station_id:
        out.append((Attr.CALLING_STATION_ID, r.calling_station_id))
    out.append((Attr.NAS_IDENTIFIER, r.nas_identifier))
    if r.nas_ip:
        out.append((Attr.NAS_IP_ADDRESS, r.nas_ip))
    if r.nas_port_id:
        out.append((Attr.NAS_PORT_ID, r.nas_port_id))
    out.append((Attr.NAS_PORT_TYPE, int(r.nas_port_type)))
    out.append((Attr.ACCT_AUTHENTIC, RADIUS_AUTHENTIC))
    if r.framed_ip:
        out.append((Attr.FRAMED_IP_ADDRESS, r.framed_ip))
    out += [(Attr.CLASS, c) for c in r.classes]
    if r.multi_session_id:
        out.append((Attr.ACCT_MULTI_SESSION_ID, r.multi_session_id))
    if r.session_time is not None:
        out.append((Attr.ACCT_SESSION_TIME, r.session_time))
    if r.usage is not None:
        u = r.usage
        out += [(Attr.ACCT_INPUT_OCTETS, u.input_octets % GIGA), (Attr.ACCT_INPUT_GIGAWORDS, (u.input_octets // GIGA) % GIGA),
                (Attr.ACCT_OUTPUT_OCTETS, u.output_octets % GIGA),
                (Attr.ACCT_OUTPUT_GIGAWORDS, (u.output_octets // GIGA) % GIGA),
                (Attr.ACCT_INPUT_PACKETS, u.input_packets % GIGA), (Attr.ACCT_OUTPUT_PACKETS, u.output_packets % GIGA)]
    if r.cause is not None:
        out.append((Attr.ACCT_TERMINATE_CAUSE, int(r.cause)))
    out.append((Attr.EVENT_TIMESTAMP, r.event_time))
    if delay:
        out.append((Attr.ACCT_DELAY_TIME, delay))
    return out


def _value(code: int, v: object) -> bytes:
    if code in INTEGERS:
        return struct.pack("!I", v)
    if code in ADDRESSES:
        try:
            return ipaddress.IPv4Address(str(v)).packed
        except ValueError:
            raise AccountingError(f"{Attr(code).name}: {v!r} is not an IPv4 address") from None
    if code in OCTETS:
        return bytes(v)  # type: ignore[arg-type]
    return str(v).encode()


def _tlvs(attrs: list[tuple[int, object]]) -> bytes:
    out = bytearray()
    for code, v in attrs:
        raw = _value(code, v)
        if not raw or len(raw) > 253:
            raise AccountingError(f"{Attr(code).name}: {len(raw)} octets (1..253 fit an attribute)")
        out += bytes((code, len(raw) + 2)) + raw
    return bytes(out)


def encode(r: AccountingRecord, identifier: int, secret: bytes, delay: int = 0) -> bytes:
    """The Accounting-Request for `r` with this Identifier and Acct-Delay-Time `delay` (seconds
    the event is old as it is sent: 0 the first time, RFC 2866 §5.2)."""
    if not 0 <= identifier <= 255:
        raise AccountingError(f"identifier {identifier} is not one octet")
    body = _tlvs(attributes(r, delay))
    length = 20 + len(body)
    if length > MAX_PACKET:
        raise AccountingError(f"{length} octets: longer than a RADIUS packet may be")
    head = struct.pack("!BBH", ACCOUNTING_REQUEST, identifier, length)
    auth = hashlib.md5(head + bytes(16) + body + secret).digest()
    return head + auth + body


def request_authentic(raw: bytes, secret: bytes) -> bool:
    """Is `raw` an Accounting-Request signed with `secret` (what a server checks)?"""
    if len(raw) < 20 or raw[0] != ACCOUNTING_REQUEST or struct.unpack("!H", raw[2:4])[0] != len(raw):
        return False
    return hashlib.md5(raw[:4] + bytes(16) + raw[20:] + secret).digest() == raw[4:20]


def response_authentic(raw: bytes, request: bytes, secret: bytes) -> bool:
    """Is `raw` the server's Accounting-Response to `request` (our bytes as sent)? Its code,
    Identifier and Length must agree, and its Response Authenticator must be MD5 over it with
    the request's authenticator in its place and the shared secret after it (RFC 2866 §3)."""
    if len(raw) < 20 or len(raw) > MAX_PACKET or raw[0] != ACCOUNTING_RESPONSE or raw[1] != request[1]:
        return False
    if struct.unpack("!H", raw[2:4])[0] != len(raw):
        return False
    try:
        decode_attributes(raw[20:])
    except AccountingError:
        return False
    return hashlib.md5(raw[:4] + request[4:20] + raw[20:] + secret).digest() == raw[4:20]


def decode_attributes(body: bytes) -> list[tuple[int, bytes]]:
    """Type-length-value attributes, raw; AccountingError naming the offset of a bad one."""
    out: list[tuple[int, bytes]] = []
    i = 0
    while i < len(body):
        if i + 2 > len(body) or body[i + 1] < 2 or i + body[i + 1] > len(body):
            raise AccountingError(f"malformed attribute at offset {20 + i}")
        out.append((body[i], body[i + 2 : i + body[i + 1]]))
        i += body[i + 1]
    return out


@dataclass(frozen=True)
class Decoded:
    """A request read back (tests, a capture, a toy server): attribute name -> values."""

    code: int
    identifier: int
    values: dict[str, list] = field(default_factory=dict)

    def one(self, name: str):
        v = self.values.get(name)
        return v[0] if v else None


def decode(raw: bytes) -> Decoded:
    if len(raw) < 20 or struct.unpack("!H", raw[2:4])[0] != len(raw):
        raise AccountingError("not a whole RADIUS packet")
    values: dict[str, list] = {}
    for code, v in decode_attributes(raw[20:]):
        try:
            a = Attr(code)
        except ValueError:
            values.setdefault(str(code), []).append(v)
            continue
        if a in INTEGERS:
            if len(v) != 4:
                raise AccountingError(f"{a.name}: {len(v)} octets, not 4")
            value: object = struct.unpack("!I", v)[0]
        elif a in ADDRESSES:
            value = str(ipaddress.IPv4Address(v)) if len(v) == 4 else v
        elif a in OCTETS:
            value = v
        else:
            value = v.decode(errors="replace")
        values.setdefault(a.name, []).append(value)
    return Decoded(raw[0], raw[1], values)


def response(request: bytes, secret: bytes) -> bytes:
    """An Accounting-Response to `request` (what a server sends; tests stand in for one)."""
    head = struct.pack("!BBH", ACCOUNTING_RESPONSE, request[1], 20)
    return head + hashlib.md5(head + request[4:20] + secret).digest()


def octets(usage_octets: int, gigawords: int) -> int:
    """A 64-bit count from the 32-bit attribute and its gigawords."""
    return gigawords * GIGA + usage_octets
