"""A RADIUS server's side of the wire for unit tests: a real UDP socket on 127.0.0.1 that the
test reads requests from and answers by hand — signed right, or forged in one chosen way. It
is not the thing under test (aaa/radius.py's RadiusMux is)."""
from __future__ import annotations

import hashlib
import hmac
import socket
import struct
from dataclasses import dataclass

from pyrad import packet

from tenet.aaa.failover import RadiusServer

SECRET = b"s3cret"
MA = 80


@dataclass
class Request:
    code: int
    id: int
    authenticator: bytes
    attrs: list[tuple[int, bytes]]
    raw: bytes
    addr: tuple[str, int]

    def get(self, kind: int) -> bytes | None:
        return next((v for k, v in self.attrs if k == kind), None)


def attributes(raw: bytes) -> list[tuple[int, bytes]]:
    out, i = [], 20
    while i < len(raw):
        out.append((raw[i], raw[i + 2:i + raw[i + 1]]))
        i += raw[i + 1]
    return out


def sign(code: int, rid: int, request_authenticator: bytes, attrs: list[tuple[int, bytes]], secret: bytes = SECRET,
         ma: str = "last") -> bytes:
    """A reply as a server holding `secret` signs it. ma: "first", "last" (where FreeRADIUS
    3.2.1 puts it, after EAP-Message), "none", "wrong" (present, HMAC garbage)."""
    body = [(k, v) for k, v in attrs]
    if ma in ("first", "wrong"):
        body.insert(0, (MA, bytes(16)))
    elif ma == "last":
        body.append((MA, bytes(16)))
    enc = b"".join(bytes([k, len(v) + 2]) + v for k, v in body)
    head = struct.pack("!BBH", code, rid, 20 + len(enc))
    if ma != "none":
        at = next(i for i, (k, _) in enumerate(body) if k == MA)
        off = sum(len(v) + 2 for _, v in body[:at]) + 2
        mac = hmac.new(secret, head + request_authenticator + enc, "md5").digest() if ma != "wrong" else b"\x5a" * 16
        enc = enc[:off] + mac + enc[off + 16:]
    auth = hashlib.md5(head + request_authenticator + enc + secret).digest()
    return head + auth + enc


class Peer:
    """One fake server: requests in, hand-made replies out."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.server = RadiusServer("127.0.0.1", self.sock.getsockname()[1])

    def close(self) -> None:
        self.sock.close()

    def request(self, timeout: float = 1.0) -> Request:
        self.sock.settimeout(timeout)
        raw, addr = self.sock.recvfrom(4096)
        return Request(raw[0], raw[1], raw[4:20], attributes(raw), raw, addr)

    def nothing(self, wait: float = 0.05) -> bool:
        """True if no request arrives within `wait` seconds."""
        try:
            self.request(wait)
        except (TimeoutError, socket.timeout):
            return True
        return False

    def send(self, req: Request, raw: bytes) -> None:
        self.sock.sendto(raw, req.addr)

    def challenge(self, req: Request, state: bytes, **kw) -> None:
        self.send(req, sign(packet.AccessChallenge, req.id, req.authenticator,
                            [(79, b"\x01\x02\x00\x06\x04\x00"), (24, state)], **kw))

    def accept(self, req: Request, **kw) -> None:
        self.send(req, sign(packet.AccessAccept, req.id, req.authenticator, [(79, b"\x03\x02\x00\x04")], **kw))

    def alive(self, req: Request) -> None:
        """FreeRADIUS 3.2.1's answer to Status-Server: an Access-Accept with no attributes."""
        self.send(req, sign(packet.AccessAccept, req.id, req.authenticator, [], ma="none"))
