"""ARP (RFC 826) for IPv4 over Ethernet, as much as an NVE's ARP responder needs. Pure.

On an IP-based VN the NVE answers every ARP request from its TESs with the VN's anycast
gateway MAC (proxy ARP, as EVPN's ARP suppression does): whatever a TES believes is on-link,
its frames reach the NVE's per-VN routing table, never another TES directly.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from ipaddress import IPv4Address

from tenet.wire.errors import DecodeError

ETHERTYPE = 0x0806
REQUEST, REPLY = 1, 2
_FMT = "!HHBBH6s4s6s4s"  # htype, ptype, hlen, plen, oper, sha, spa, tha, tpa
LENGTH = struct.calcsize(_FMT)


@dataclass(frozen=True)
class Arp:
    oper: int
    sha: str
    spa: IPv4Address
    tha: str
    tpa: IPv4Address


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def decode(data: bytes) -> Arp:
    if len(data) < LENGTH:
        raise DecodeError(0, f"{len(data)} bytes is shorter than an IPv4-over-Ethernet ARP packet")
    htype, ptype, hlen, plen, oper, sha, spa, tha, tpa = struct.unpack_from(_FMT, data)
    if (htype, ptype, hlen, plen) != (1, 0x0800, 6, 4):
        raise DecodeError(0, f"not IPv4 over Ethernet (htype {htype}, ptype {ptype:#06x})")
    if oper not in (REQUEST, REPLY):
        raise DecodeError(6, f"ARP operation {oper}")
    return Arp(oper, _mac(sha), IPv4Address(spa), _mac(tha), IPv4Address(tpa))


def encode(a: Arp) -> bytes:
    mac = lambda m: bytes.fromhex(m.replace(":", ""))  # noqa: E731
    return struct.pack(_FMT, 1, 0x0800, 6, 4, a.oper, mac(a.sha), a.spa.packed, mac(a.tha), a.tpa.packed)


def proxy_reply(req: Arp, mac: str) -> Arp | None:
    """The answer `mac` gives to a request, or None: not a request, a gratuitous ARP, or a
    duplicate-address probe (sender 0.0.0.0) — answering those would break the TES."""
    if req.oper != REQUEST or req.spa == req.tpa or int(req.spa) == 0:
        return None
    return Arp(REPLY, mac, req.tpa, req.sha, req.spa)


def frame(dst: str, src: str, a: Arp) -> bytes:
    mac = lambda m: bytes.fromhex(m.replace(":", ""))  # noqa: E731
    return (mac(dst) + mac(src) + struct.pack("!H", ETHERTYPE) + encode(a)).ljust(60, b"\0")


ETHERTYPE_RARP = 0x8035
RARP_REQUEST = 3  # RFC 903's "request reverse"
BROADCAST = "ff:ff:ff:ff:ff:ff"


def gratuitous(mac: str, ip: IPv4Address) -> bytes:
    """A gratuitous ARP request (RFC 5227's announcement): learning switches and neighbours
    take `mac` as where `ip` is now."""
    return frame(BROADCAST, mac, Arp(REQUEST, mac, ip, "00:00:00:00:00:00", ip))


def rarp_announce(mac: str) -> bytes:
    """What a hypervisor sends for a migrated VM whose addresses it does not know (QEMU's
    announce: a RARP request with sender and target `mac`): switches learn the MAC's port."""
    m = bytes.fromhex(mac.replace(":", ""))
    body = struct.pack(_FMT, 1, 0x0800, 6, 4, RARP_REQUEST, m, bytes(4), m, bytes(4))
    return (bytes.fromhex("ff" * 6) + m + struct.pack("!H", ETHERTYPE_RARP) + body).ljust(60, b"\0")
