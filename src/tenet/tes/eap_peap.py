"""PEAPv0 with EAP-MSCHAPv2 inside (MS-PEAP; draft-josefsson-pppext-eap-tls-eap), peer side.

Once TLS is up, EAP runs again inside the tunnel. PEAPv0 compresses it: the inner packets
travel without their 4-byte header (code, identifier, length), the type first, except the
Extensions packets (type 33), whose Result TLV closes the inner conversation with the full
header. FreeRADIUS sends its Identity request whole all the same, so requests are read in
either form; our responses are compressed (it refuses a whole one) but for Extensions.

The inner method is MSCHAPv2: the NT-Response proves we know the password, and the server's
authenticator response proves it does too. The tunnel's result is believed only when both hold.
"""
from __future__ import annotations

import hmac
import os
import struct
from dataclasses import dataclass

from tenet.tes import mschapv2
from tenet.tes.eap_tls import TlsMethod, TlsTunnel
from tenet.tes.methods import Credentials, MethodError
from tenet.wire import eap, tls_frame
from tenet.wire.errors import DecodeError

TYPE_EXTENSIONS = 33  # "EAP-TLV" in MS-PEAP
TLV_RESULT = 3
RESULT_SUCCESS, RESULT_FAILURE = 1, 2
TLV_MANDATORY = 0x8000


@dataclass(frozen=True)
class Inner:
    """An EAP packet inside the tunnel: `whole` if it came with its header (then `identifier`
    is its own), else compressed (PEAPv0)."""

    code: eap.EapCode
    type: int
    data: bytes
    identifier: int = 0
    whole: bool = False


def decode_inner(b: bytes) -> Inner:
    if not b:
        raise DecodeError(0, "empty packet inside the PEAP tunnel")
    if len(b) >= 5 and b[0] in (eap.EapCode.REQUEST, eap.EapCode.RESPONSE) and int.from_bytes(b[2:4], "big") == len(b):
        p = eap.decode(b)  # a header: a compressed packet's first byte is its type, never 1 with a matching length
        assert p.type is not None
        return Inner(p.code, p.type, p.data, p.identifier, True)
    return Inner(eap.EapCode.REQUEST, b[0], bytes(b[1:]))


def encode_inner(p: Inner) -> bytes:
    if p.whole:
        return eap.encode(eap.EapPacket(p.code, p.identifier, p.type, p.data))
    return bytes([p.type]) + p.data


def result_tlv(result: int) -> bytes:
    return struct.pack("!HHH", TLV_MANDATORY | TLV_RESULT, 2, result)


def parse_result(data: bytes) -> int | None:
    """The Result TLV's value among an Extensions packet's TLVs (None if it has none)."""
    off = 0
    while off + 4 <= len(data):
        t, n = struct.unpack_from("!HH", data, off)
        if off + 4 + n > len(data):
            raise DecodeError(off + 2, f"TLV length {n} runs past the packet")
        if t & 0x3FFF == TLV_RESULT and n == 2:
            return int.from_bytes(data[off + 4 : off + 6], "big")
        off += 4 + n
    return None


class EapPeap(TlsMethod):
    type = tls_frame.TYPE_PEAP
    client_cert = False
    max_version = 0  # PEAPv0, what Windows, wpa_supplicant and FreeRADIUS speak by default

    def __init__(self, cred: Credentials) -> None:
        super().__init__(cred)
        self.expected = ""  # the authenticator response a server knowing the password sends
        self.proved = False  # the server sent it
        self.failure = ""

    def established(self, tunnel: TlsTunnel) -> None:
        """The server is who the CA says; our proof (MSCHAPv2) comes inside."""

    def inner(self, tunnel: TlsTunnel, data: bytes) -> None:
        try:
            req = decode_inner(data)
        except DecodeError as e:
            raise MethodError(f"PEAP: malformed inner packet: {e}") from None
        ans = self._answer(req)
        tunnel.send(encode_inner(ans))

    def _answer(self, req: Inner) -> Inner:
        reply = lambda data: Inner(eap.EapCode.RESPONSE, req.type, data, req.identifier,  # noqa: E731
                                   req.type == TYPE_EXTENSIONS)
        if req.code is not eap.EapCode.REQUEST:
            raise MethodError(f"PEAP: the server sent an inner EAP {req.code.name.lower()}")
        if req.type == eap.TYPE_IDENTITY:
            self.expected, self.proved, self.failure = "", False, ""
            return reply(self.cred.identity.encode())
        if req.type == mschapv2.TYPE_MSCHAPV2:
            return reply(self._mschapv2(req.data))
        if req.type == TYPE_EXTENSIONS:
            try:
                result = parse_result(req.data)
            except DecodeError as e:
                raise MethodError(f"PEAP: malformed Extensions packet: {e}") from None
            if result == RESULT_SUCCESS and not self.proved:
                raise MethodError("PEAP: the server claims success without proving it knows the password")
            if result == RESULT_SUCCESS:
                self.finished = True
            else:
                self.failure = self.failure or "the server ended the tunnel with a failure: the inner authentication failed"
            return reply(result_tlv(RESULT_SUCCESS if result == RESULT_SUCCESS else RESULT_FAILURE))
        return Inner(eap.EapCode.RESPONSE, eap.TYPE_NAK, bytes([mschapv2.TYPE_MSCHAPV2]), req.identifier)

    def _mschapv2(self, data: bytes) -> bytes:
        try:
            m = mschapv2.parse_request(data)
        except DecodeError as e:
            raise MethodError(f"PEAP: malformed MSCHAPv2 request: {e}") from None
        if isinstance(m, mschapv2.Challenge):
            peer = os.urandom(16)
            nt = mschapv2.nt_response(m.challenge, peer, self.cred.identity, self.cred.password)
            self.expected = mschapv2.authenticator_response(self.cred.password, nt, peer, m.challenge, self.cred.identity)
            return mschapv2.response(m.ms_id, peer, nt, self.cred.identity)
        if isinstance(m, mschapv2.Success):
            if not self.expected or not hmac.compare_digest(m.authenticator.upper(), self.expected):
                raise MethodError("PEAP: the server's MSCHAPv2 authenticator response is wrong: it does not know our password")
            self.proved = True
            return mschapv2.success_ack()
        fields = m.fields
        self.failure = f"MSCHAPv2 E={m.error}: {mschapv2.MSCHAP_ERRORS.get(m.error, fields.get('M', 'failure'))}"
        return mschapv2.failure_ack()
