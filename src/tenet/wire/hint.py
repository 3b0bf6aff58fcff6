"""Peer hints: the UDP datagram an NVE sends its peers on the same physical network when it
has authorized a MAC itself, before the controller has published it (issue 20's fast path).

An announce says "on VN <vnid>, internal MAC <m> is reachable as external MAC <e>"; a
withdraw takes that back. A hint only bridges the seconds until the published tables catch
up, so trust is the receiver's business, not this codec's: it accepts hints only from its
uplink's own subnet, and a hint never overrides what the controller has published. This
module is the strict, pure wire format: malformed input raises DecodeError with the offset.

Network byte order: version u8 (1), count u8 (1..HINT_MAX_ENTRIES), seq u32 (the sender's,
increasing), then `count` entries of kind u8, vnid u24, internal MAC, external MAC.
"""
from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import IntEnum

from tenet.wire import discovery
from tenet.wire.errors import DecodeError

HINT_PORT = discovery.HINT_PORT  # 6769, defined beside the project's other ports
VERSION = 1
HINT_MAX_ENTRIES = 64  # 6 + 64 * 16 = 1030 bytes: one datagram, unfragmented at MTU 1500
HEADER = 6
ENTRY = 16
_HEAD = "!BBI"  # version, count, seq
_MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
_VNID_MAX = 0xFFFFFF  # VN-IDs are 1..2^24-1, as the model loads them


class HintKind(IntEnum):
    ANNOUNCE = 1
    WITHDRAW = 2


@dataclass(frozen=True)
class HintEntry:
    kind: HintKind
    vnid: int
    internal: str  # the VM's own MAC inside the VN
    external: str  # the unique MAC it wears on the physical network


@dataclass(frozen=True)
class Hint:
    seq: int
    entries: tuple[HintEntry, ...]


def _not_a_nic(mac: str) -> str | None:
    """Why `mac` (canonical form) cannot name one NIC, or None."""
    if mac == "ff:ff:ff:ff:ff:ff":
        return f"broadcast MAC {mac}"
    if int(mac[:2], 16) & 1:
        return f"multicast MAC {mac}"
    if mac == "00:00:00:00:00:00":
        return f"all-zero MAC {mac}"
    return None


def _mac_bytes(mac: object, which: str) -> bytes:
    if not isinstance(mac, str) or not _MAC.match(mac):
        raise ValueError(f"{which} MAC {mac!r} is not lowercase aa:bb:cc:dd:ee:ff")
    if (why := _not_a_nic(mac)) is not None:
        raise ValueError(f"{which} {why} cannot name a NIC")
    return bytes.fromhex(mac.replace(":", ""))


def _entry_bytes(e: HintEntry) -> bytes:
    try:
        kind = HintKind(e.kind)
    except ValueError:
        raise ValueError(f"kind {e.kind!r} is not announce (1) or withdraw (2)") from None
    if not isinstance(e.vnid, int) or isinstance(e.vnid, bool) or not 1 <= e.vnid <= _VNID_MAX:
        raise ValueError(f"VN-ID {e.vnid!r} not in 1..{_VNID_MAX}")
    return (bytes([kind]) + e.vnid.to_bytes(3, "big")
            + _mac_bytes(e.internal, "internal") + _mac_bytes(e.external, "external"))


def encode(h: Hint) -> bytes:
    if not isinstance(h.seq, int) or isinstance(h.seq, bool) or not 0 <= h.seq < 2**32:
        raise ValueError(f"seq {h.seq!r} is not a u32")
    if not 1 <= len(h.entries) <= HINT_MAX_ENTRIES:
        raise ValueError(f"{len(h.entries)} entries, expected 1..{HINT_MAX_ENTRIES}")
    body = b""
    for i, e in enumerate(h.entries):
        try:
            body += _entry_bytes(e)
        except ValueError as err:
            raise ValueError(f"entry {i}: {err}") from None
    return struct.pack(_HEAD, VERSION, len(h.entries), h.seq) + body


def _mac_at(data: bytes, off: int, which: str) -> str:
    mac = bytes(data[off:off + 6]).hex(":")
    if (why := _not_a_nic(mac)) is not None:
        raise DecodeError(off, f"{which} {why} cannot name a NIC")
    return mac


def decode(data: bytes) -> Hint:
    if len(data) < HEADER:
        raise DecodeError(0, f"{len(data)} bytes is shorter than the {HEADER}-byte header")
    version, count, seq = struct.unpack_from(_HEAD, data)
    if version != VERSION:
        raise DecodeError(0, f"version {version}, expected {VERSION}")
    if not 1 <= count <= HINT_MAX_ENTRIES:
        raise DecodeError(1, f"count {count}, expected 1..{HINT_MAX_ENTRIES}")
    entries = []
    for i in range(count):
        off = HEADER + i * ENTRY
        if off + ENTRY > len(data):
            raise DecodeError(off, f"entry {i} truncated: {len(data) - off} of {ENTRY} bytes")
        try:
            kind = HintKind(data[off])
        except ValueError:
            raise DecodeError(off, f"entry {i}: unknown kind {data[off]}") from None
        vnid = int.from_bytes(data[off + 1:off + 4], "big")
        if vnid == 0:
            raise DecodeError(off + 1, f"entry {i}: VN-ID 0")
        internal = _mac_at(data, off + 4, f"entry {i}: internal")
        external = _mac_at(data, off + 10, f"entry {i}: external")
        entries.append(HintEntry(kind, vnid, internal, external))
    end = HEADER + count * ENTRY
    if len(data) != end:
        raise DecodeError(end, f"{len(data) - end} trailing bytes after {count} entries")
    return Hint(seq, tuple(entries))
