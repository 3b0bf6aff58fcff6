"""EAP methods on the peer side: what every method is, and EAP-MD5.

A method is an object per authentication (RFC 3748 §2: a conversation), not a function of one
request: EAP-TLS and its tunnels hold a TLS session, fragments in and out, and the inner
method's progress across ten rounds. `tes/peer.py` makes one when the server proposes its
type and drops it when a new authentication starts (a re-authentication, a restarted NVE).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from tenet.wire import eap

DEFAULT_FRAGMENT = 1024  # TLS bytes per EAP packet: 1024 + headers fits any 1280-byte path


@dataclass(frozen=True)
class Credentials:
    """Who the TES is, for any method: the identity (EAP-Response/Identity, and the name in
    the client certificate for EAP-TLS), a password (MD5, PEAP, TTLS), the CA that must have
    signed the server's certificate and our own certificate and key (TLS)."""

    identity: str
    password: str = ""
    ca: str = ""
    cert: str = ""
    key: str = ""
    server_name: str = ""  # if set, the server certificate must name it (SAN or CN)
    fragment_size: int = DEFAULT_FRAGMENT


class CredentialsError(ValueError):
    """The configuration cannot work: a file missing or unreadable, a key not matching."""


class MethodError(RuntimeError):
    """The method cannot go on: the server is not trusted, or broke the method's rules.
    `last` is what to send before giving up (a TLS alert, an acknowledgement), if anything."""

    def __init__(self, why: str, last: eap.EapPacket | None = None) -> None:
        super().__init__(why)
        self.last = last


class PeerMethod(Protocol):
    type: int

    def answer(self, req: eap.EapPacket) -> eap.EapPacket: ...

    @property
    def finished(self) -> bool:
        """Whether the method reached its end on our side: an EAP-Success before that is not
        believed (a TLS method's success means the server proved itself first)."""
        ...


def response(req: eap.EapPacket, data: bytes) -> eap.EapPacket:
    return eap.EapPacket(eap.EapCode.RESPONSE, req.identifier, req.type, data)


class Md5:
    """EAP-MD5 (RFC 3748 §5.4): one challenge, one answer; the server proves nothing."""

    type = eap.TYPE_MD5

    def __init__(self, cred: Credentials) -> None:
        self.password = cred.password.encode()
        self.finished = False

    def answer(self, req: eap.EapPacket) -> eap.EapPacket:
        try:
            challenge, _ = eap.parse_md5(req)
        except ValueError as e:
            raise MethodError(f"malformed EAP-MD5 challenge: {e}") from None
        self.finished = True
        return eap.md5_response(req.identifier, self.password, challenge)
