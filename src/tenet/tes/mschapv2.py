"""MS-CHAPv2 (RFC 2759) and its EAP framing (draft-kamath-pppext-eap-mschapv2): pure.

The peer's half: the NT-Response to the server's challenge, and the check of the server's
authenticator response, which proves the server knew the password too (without it PEAP would
accept any server that holds a certificate from the CA).
"""
from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import IntEnum

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tenet.tes.md4 import md4
from tenet.wire.errors import DecodeError

TYPE_MSCHAPV2 = 26
MAGIC1 = b"Magic server to client signing constant"
MAGIC2 = b"Pad to make it do more than one iteration"


class OpCode(IntEnum):
    CHALLENGE = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4
    CHANGE_PASSWORD = 7


# -- RFC 2759 §8 --------------------------------------------------------------------------
def nt_password_hash(password: str) -> bytes:
    return md4(password.encode("utf-16-le"))


def challenge_hash(peer_challenge: bytes, authenticator_challenge: bytes, user_name: str) -> bytes:
    """The 8-byte challenge both sides hash with; the user name without a DOMAIN\\ prefix."""
    name = user_name.rsplit("\\", 1)[-1].encode()
    return hashlib.sha1(peer_challenge + authenticator_challenge + name).digest()[:8]


def _des_key(seven: bytes) -> bytes:
    """56 key bits spread over 8 bytes, the low bit of each the (ignored) odd parity bit."""
    bits = int.from_bytes(seven, "big")
    out = bytearray()
    for i in range(8):
        b = ((bits >> (49 - 7 * i)) & 0x7F) << 1
        out.append(b | (bin(b).count("1") + 1) % 2)
    return bytes(out)


def _des(key7: bytes, block: bytes) -> bytes:
    k = _des_key(key7)
    enc = Cipher(algorithms.TripleDES(k * 3), modes.ECB()).encryptor()  # K|K|K is single DES
    return enc.update(block) + enc.finalize()


def challenge_response(challenge: bytes, password_hash: bytes) -> bytes:
    z = password_hash.ljust(21, b"\x00")
    return b"".join(_des(z[i : i + 7], challenge) for i in (0, 7, 14))


def nt_response(authenticator_challenge: bytes, peer_challenge: bytes, user_name: str, password: str) -> bytes:
    """GenerateNTResponse: 24 bytes."""
    return challenge_response(challenge_hash(peer_challenge, authenticator_challenge, user_name),
                              nt_password_hash(password))


def authenticator_response(password: str, nt_resp: bytes, peer_challenge: bytes, authenticator_challenge: bytes,
                           user_name: str) -> str:
    """GenerateAuthenticatorResponse: "S=" and 40 upper-case hex digits."""
    hash_hash = md4(nt_password_hash(password))
    digest = hashlib.sha1(hash_hash + nt_resp + MAGIC1).digest()
    challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name)
    return "S=" + hashlib.sha1(digest + challenge + MAGIC2).digest().hex().upper()


# -- EAP-MSCHAPv2 packets (the Type-Data after EAP type 26) --------------------------------
@dataclass(frozen=True)
class Challenge:
    ms_id: int
    challenge: bytes  # 16 bytes
    name: bytes


@dataclass(frozen=True)
class Success:
    ms_id: int
    message: str  # "S=<40 hex> M=<text>"

    @property
    def authenticator(self) -> str:
        return self.message.split(" ", 1)[0]


@dataclass(frozen=True)
class Failure:
    ms_id: int
    message: str  # "E=691 R=0 C=<32 hex> V=3 M=<text>"

    @property
    def fields(self) -> dict[str, str]:
        """E, R, C, V and M (the text may contain spaces: M is the last field)."""
        head, _, text = self.message.partition(" M=")
        out = dict(f.split("=", 1) for f in head.split() if "=" in f)
        if text or self.message.startswith("M="):
            out["M"] = text or self.message[2:]
        return out

    @property
    def error(self) -> int:
        try:
            return int(self.fields.get("E", "0"))
        except ValueError:
            return 0


MSCHAP_ERRORS = {646: "restricted logon hours", 647: "account disabled", 648: "password expired",
                 649: "no dial-in permission", 691: "authentication failure (wrong user name or password)",
                 709: "error changing password"}


def parse_request(data: bytes) -> Challenge | Success | Failure:
    """An EAP-MSCHAPv2 request's Type-Data: OpCode, MS-CHAPv2-ID, MS-Length, then the body."""
    if len(data) < 4:
        raise DecodeError(0, "EAP-MSCHAPv2 request shorter than 4 bytes")
    op, ms_id, ms_len = data[0], data[1], int.from_bytes(data[2:4], "big")
    if ms_len > len(data) or ms_len < 4:
        raise DecodeError(2, f"MS-Length {ms_len} outside 4..{len(data)}")
    body = data[4:ms_len]
    if op == OpCode.CHALLENGE:
        if not body or body[0] != 16 or len(body) < 17:
            raise DecodeError(4, "MSCHAPv2 challenge without a 16-byte value")
        return Challenge(ms_id, bytes(body[1:17]), bytes(body[17:]))
    if op == OpCode.SUCCESS:
        return Success(ms_id, body.decode("ascii", errors="replace"))
    if op == OpCode.FAILURE:
        return Failure(ms_id, body.decode("ascii", errors="replace"))
    raise DecodeError(0, f"EAP-MSCHAPv2 opcode {op} is not one a server sends")


def response(ms_id: int, peer_challenge: bytes, nt_resp: bytes, name: str) -> bytes:
    """The Response's Type-Data: Value-Size 49 = Peer-Challenge, 8 reserved, NT-Response, Flags."""
    value = peer_challenge + b"\x00" * 8 + nt_resp + b"\x00"
    body = bytes([len(value)]) + value + name.encode()
    return struct.pack("!BBH", OpCode.RESPONSE, ms_id, 4 + len(body)) + body


def success_ack() -> bytes:
    return bytes([OpCode.SUCCESS])


def failure_ack() -> bytes:
    return bytes([OpCode.FAILURE])
