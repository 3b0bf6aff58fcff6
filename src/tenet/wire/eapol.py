"""EAPOL (IEEE 802.1X-2010 §11): the frames a supplicant and an authenticator exchange.

Strict and pure like the other codecs: immutable frames, lengths computed on encode, and
malformed input raises DecodeError with the offset — never anything else. The 802.1X-on-
behalf-of-VMs design (seed 000) sends these with the *VM's* MAC as the source, from the host.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from tenet.wire import eap
from tenet.wire.errors import DecodeError

ETHERTYPE = 0x888E
PAE_GROUP = "01:80:c2:00:00:03"  # the port access entity group address: never forwarded by bridges
VERSIONS = (1, 2, 3)
SEND_VERSION = 2  # 802.1X-2004: what FreeRADIUS-era authenticators all accept
HEADER = 4
MIN_FRAME = 60


class EapolType(IntEnum):
    EAP = 0
    START = 1
    LOGOFF = 2
    KEY = 3
    ASF_ALERT = 4
    MKA = 5
    ANNOUNCEMENT_GENERIC = 6
    ANNOUNCEMENT_SPECIFIC = 7
    ANNOUNCEMENT_REQ = 8


@dataclass(frozen=True)
class Eapol:
    type: EapolType
    body: bytes = b""  # EAP: one EAP packet; START/LOGOFF: empty
    version: int = SEND_VERSION

    @property
    def eap(self) -> eap.EapPacket:
        """The EAP packet an EAP-type frame carries (decoded strictly)."""
        if self.type is not EapolType.EAP:
            raise ValueError(f"EAPOL {self.type.name} carries no EAP packet")
        return eap.decode(self.body)


def of_eap(packet: eap.EapPacket) -> Eapol:
    return Eapol(EapolType.EAP, eap.encode(packet))


def encode(f: Eapol) -> bytes:
    if f.version not in VERSIONS:
        raise ValueError(f"EAPOL version {f.version} is not 1, 2 or 3")
    if f.type in (EapolType.START, EapolType.LOGOFF) and f.body:
        raise ValueError(f"EAPOL {f.type.name} has no body")
    if len(f.body) > 0xFFFF:
        raise ValueError("EAPOL body too long")
    return struct.pack("!BBH", f.version, int(f.type), len(f.body)) + f.body


def decode(data: bytes) -> Eapol:
    if len(data) < HEADER:
        raise DecodeError(0, f"{len(data)} bytes is shorter than the {HEADER}-byte EAPOL header")
    if data[0] not in VERSIONS:
        raise DecodeError(0, f"EAPOL version {data[0]}, expected 1..3")
    try:
        kind = EapolType(data[1])
    except ValueError:
        raise DecodeError(1, f"unknown EAPOL packet type {data[1]}") from None
    length = int.from_bytes(data[2:4], "big")
    if HEADER + length > len(data):
        raise DecodeError(2, f"body length {length} overruns the {len(data) - HEADER} bytes left")
    body = bytes(data[HEADER:HEADER + length])
    if kind in (EapolType.START, EapolType.LOGOFF):
        body = b""  # a v3 Start may carry TLVs (802.1X-2010 §11.9) we never act on: dropped, so it re-encodes
    if kind is EapolType.EAP:
        try:
            eap.decode(body)
        except DecodeError as e:
            raise DecodeError(HEADER + e.offset, e.reason) from None
        if int.from_bytes(body[2:4], "big") != length:
            raise DecodeError(2, f"body length {length} is not the EAP packet's length")
    return Eapol(kind, body, data[0])


def frame(dst: str, src: str, f: Eapol) -> bytes:
    """An Ethernet frame carrying `f`, padded to the 60-byte minimum (the body length says
    where EAPOL ends, so receivers ignore the padding)."""
    mac = lambda m: bytes.fromhex(m.replace(":", ""))  # noqa: E731
    return (mac(dst) + mac(src) + struct.pack("!H", ETHERTYPE) + encode(f)).ljust(MIN_FRAME, b"\0")


def unframe(data: bytes) -> tuple[str, str, Eapol]:
    if len(data) < 14:
        raise DecodeError(0, "shorter than an Ethernet header")
    if int.from_bytes(data[12:14], "big") != ETHERTYPE:
        raise DecodeError(12, f"ethertype {int.from_bytes(data[12:14], 'big'):#06x} is not EAPOL")
    try:
        f = decode(data[14:])
    except DecodeError as e:
        raise DecodeError(14 + e.offset, e.reason) from None
    hexmac = lambda b: ":".join(f"{x:02x}" for x in b)  # noqa: E731
    return hexmac(data[:6]), hexmac(data[6:12]), f
