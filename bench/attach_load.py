"""Runs inside one TES namespace for bench/attach.py: many virtual TESs, pipelined.

Each virtual TES (its own MAC) loops DISCOVER -> OFFER -> REQUEST (with its EAP identity, as
tenet-tes sends it) -> CONFIRM -> EAP-MD5 -> AUTH_RESULT -> TERMINATE, reacting to frames as they come, so the NVE — not a
TES's offer window — is what limits the rate. Bounded: `count` TESs for `seconds`.
Prints the number of admissions (AUTH_RESULT success).

The generator shares the NVE's two cores, so it works on bytes: frames it sends repeat per
MAC and are built once (with tenet's codec, so they are what a real TES sends); replies are
read at the fixed offsets of docs/protocol.md. Everything the NVE sends is still checked: a
frame this parser does not expect is counted and reported, never silently taken.
"""
from __future__ import annotations

import hashlib
import select
import struct
import sys
import time

from tenet.ethernet import packet_socket
from tenet.tes.client import IDENTITY_ID
from tenet.wire import eap
from tenet.wire.discovery import BROADCAST, HEADER, Message, MsgType, Tlv, TlvType, frame

ETH = 14
TLVS = ETH + HEADER  # first TLV of a frame
EAP_TYPE_IDENTITY, EAP_TYPE_MD5, EAP_RESPONSE = 1, 4, 2


def tlv(data: bytes, kind: int) -> bytes | None:
    """The value of the first TLV of `kind`, walking the TLVs within the header's length."""
    end = ETH + int.from_bytes(data[ETH + 2:ETH + 4], "big")
    off = TLVS
    while off + 4 <= end:
        t, n = struct.unpack_from("!HH", data, off)
        if t == kind:
            return data[off + 4:off + 4 + n]
        off += 4 + n
    return None


def session_frame(dst: bytes, src: bytes, kind: MsgType, session: bytes, vnid: bytes, payload: bytes = b"") -> bytes:
    """A session-phase frame (ethertype 0x88B6) from the bytes of a received one."""
    body = struct.pack("!HH", TlvType.EAP_PAYLOAD, len(payload)) + payload if payload else b""
    head = struct.pack("!BBH", 1 << 4, kind, HEADER + len(body)) + session + vnid + b"\0"
    return (dst + src + b"\x88\xb6" + head + body).ljust(60, b"\0")


def main() -> None:
    count, seconds = int(sys.argv[1]), float(sys.argv[2])
    sock = packet_socket()
    sock.bind(("eth0", 0))
    sock.setblocking(False)
    macs = [f"02:10:ad:00:{i >> 8:02x}:{i & 0xFF:02x}" for i in range(count)]
    raw = {bytes.fromhex(m.replace(":", "")): m for m in macs}
    creds = {bytes.fromhex(m.replace(":", "")): (f"u{i % 4}".encode(), f"p{i % 4}".encode()) for i, m in enumerate(macs)}
    discover = {b: frame(BROADCAST, m, Message(MsgType.DISCOVER, 0, 0, (Tlv(TlvType.VN_NAME, "n1"),))) for b, m in raw.items()}
    requests: dict[tuple[bytes, bytes, bytes], bytes] = {}
    admitted = unexpected = 0

    end = time.monotonic() + seconds
    last_seen = {b: time.monotonic() for b in raw}
    for b in raw:
        sock.send(discover[b])
    while time.monotonic() < end:
        ready, _, _ = select.select([sock], [], [], 0.05)
        now = time.monotonic()
        for b, t in last_seen.items():  # a lost frame must not stall a virtual TES forever
            if now - t > 1.0:
                last_seen[b] = now
                sock.send(discover[b])
        if not ready:
            continue
        while True:
            try:
                data = sock.recv(2048)
            except BlockingIOError:
                break
            dst = data[:6]
            if dst not in creds or len(data) < TLVS:
                continue
            last_seen[dst] = now
            nve, kind, session, vnid = data[6:12], data[ETH + 1], data[ETH + 4:ETH + 8], data[ETH + 8:ETH + 11]
            if kind == MsgType.OFFER:
                key = (dst, nve, vnid)
                if key not in requests:
                    ident = eap.encode(eap.identity_response(IDENTITY_ID, creds[dst][0].decode()))  # as tenet-tes
                    msg = Message(MsgType.REQUEST, 0, int.from_bytes(vnid, "big"),
                                  (Tlv(TlvType.VN_NAME, "n1"), Tlv(TlvType.EAP_PAYLOAD, ident)))
                    requests[key] = frame(":".join(f"{x:02x}" for x in nve), raw[dst], msg)
                sock.send(requests[key])
            elif kind == MsgType.EAP:
                req = tlv(data, TlvType.EAP_PAYLOAD)
                if req is None or len(req) < 5:
                    unexpected += 1
                    continue
                ident, pw = creds[dst]
                if req[4] == EAP_TYPE_IDENTITY:
                    data_ = bytes([EAP_TYPE_IDENTITY]) + ident
                elif req[4] == EAP_TYPE_MD5 and len(req) >= 6 + req[5]:
                    challenge = req[6:6 + req[5]]
                    data_ = bytes([EAP_TYPE_MD5, 16]) + hashlib.md5(bytes([req[1]]) + pw + challenge).digest()
                else:
                    unexpected += 1
                    continue
                ans = struct.pack("!BBH", EAP_RESPONSE, req[1], 4 + len(data_)) + data_
                sock.send(session_frame(nve, dst, MsgType.EAP, session, vnid, ans))
            elif kind == MsgType.AUTH_RESULT:
                status = tlv(data, TlvType.AUTH_STATUS)
                if status == b"\0":
                    admitted += 1
                else:
                    unexpected += 1
                sock.send(session_frame(nve, dst, MsgType.TERMINATE, session, vnid))
                sock.send(discover[dst])
            elif kind != MsgType.CONFIRM:
                unexpected += 1
    print(admitted)
    if unexpected:
        print(f"{unexpected} unexpected frames", file=sys.stderr)


if __name__ == "__main__":
    main()
