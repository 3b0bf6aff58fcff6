"""Runs inside one TES namespace for bench/attach.py: many virtual TESs, pipelined.

Each virtual TES (its own MAC) loops DISCOVER -> OFFER -> REQUEST -> CONFIRM -> EAP identity
-> EAP-MD5 -> AUTH_RESULT -> TERMINATE, reacting to frames as they come, so the NVE — not a
TES's offer window — is what limits the rate. Bounded: `count` TESs for `seconds`.
Prints the number of admissions (AUTH_RESULT success).
"""
from __future__ import annotations

import select
import sys
import time

from tenet.ethernet import packet_socket
from tenet.wire import eap
from tenet.wire.discovery import BROADCAST, DecodeError, Message, MsgType, Tlv, TlvType, frame, unframe


def main() -> None:
    count, seconds = int(sys.argv[1]), float(sys.argv[2])
    sock = packet_socket()
    sock.bind(("eth0", 0))
    macs = [f"02:10:ad:00:{i >> 8:02x}:{i & 0xFF:02x}" for i in range(count)]
    creds = {m: (f"u{i % 4}", f"p{i % 4}") for i, m in enumerate(macs)}
    nve: dict[str, str] = {}
    admitted = 0

    def send(dst: str, src: str, msg: Message) -> None:
        sock.send(frame(dst, src, msg))

    def discover(m: str) -> None:
        send(BROADCAST, m, Message(MsgType.DISCOVER, 0, 0, (Tlv(TlvType.VN_NAME, "n1"),)))

    for m in macs:
        discover(m)
    end = time.monotonic() + seconds
    last_seen = {m: time.monotonic() for m in macs}
    while time.monotonic() < end:
        ready, _, _ = select.select([sock], [], [], 0.05)
        now = time.monotonic()
        for m in macs:  # a lost frame must not stall a virtual TES forever
            if now - last_seen[m] > 1.0:
                last_seen[m] = now
                discover(m)
        if not ready:
            continue
        data = sock.recv(2048)
        try:
            dst, src, _, msg = unframe(data)
        except DecodeError:
            continue
        if dst not in creds:
            continue
        last_seen[dst] = now
        ident, pw = creds[dst]
        if msg.type is MsgType.OFFER:
            nve[dst] = src
            send(src, dst, Message(MsgType.REQUEST, 0, msg.vnid, (Tlv(TlvType.VN_NAME, "n1"),)))
        elif msg.type is MsgType.EAP:
            req = eap.decode(msg.get(TlvType.EAP_PAYLOAD))
            if req.type == eap.TYPE_IDENTITY:
                ans = eap.identity_response(req.identifier, ident)
            else:
                ans = eap.md5_response(req.identifier, pw.encode(), eap.parse_md5(req)[0])
            send(src, dst, Message(MsgType.EAP, msg.session_id, msg.vnid, (Tlv(TlvType.EAP_PAYLOAD, eap.encode(ans)),)))
        elif msg.type is MsgType.AUTH_RESULT:
            if msg.get(TlvType.AUTH_STATUS) == 0:
                admitted += 1
            send(src, dst, Message(MsgType.TERMINATE, msg.session_id, msg.vnid))
            discover(dst)
    print(admitted)


if __name__ == "__main__":
    main()
