"""The peer's side of one EAP authentication (RFC 3748 §2): which method answers what.

Identity is answered with ours, Notification acknowledged, a method we were configured for
handed to its object (made at the server's first request of it, anew when the server starts
the method over), any other method NAKed proposing our first choice. A retransmitted request
(the same identifier and bytes) gets the same response again (§4.1): a TLS method must not
see a fragment twice.
"""
from __future__ import annotations

from collections.abc import Callable

from tenet.tes.eap_peap import EapPeap
from tenet.tes.eap_tls import EapTls
from tenet.tes.eap_ttls import EapTtls
from tenet.tes.methods import Credentials, CredentialsError, Md5, MethodError, PeerMethod
from tenet.wire import eap, tls_frame

NAMES = {"md5": eap.TYPE_MD5, "tls": tls_frame.TYPE_TLS, "ttls": tls_frame.TYPE_TTLS, "peap": tls_frame.TYPE_PEAP}
FACTORIES: dict[int, Callable[[Credentials], PeerMethod]] = {
    eap.TYPE_MD5: Md5, tls_frame.TYPE_TLS: EapTls, tls_frame.TYPE_TTLS: EapTtls, tls_frame.TYPE_PEAP: EapPeap}
MUTUAL = frozenset({tls_frame.TYPE_TLS, tls_frame.TYPE_TTLS, tls_frame.TYPE_PEAP})  # the server proves itself


def check(cred: Credentials, methods: tuple[int, ...]) -> None:
    """Make each method once, so that a missing certificate or an unreadable key is said at
    start-up, not at the first authentication (CredentialsError)."""
    for m in methods:
        if m not in FACTORIES:
            raise CredentialsError(f"EAP type {m} is not one tenet-tes speaks ({', '.join(NAMES)})")
        FACTORIES[m](cred)


class Peer:
    def __init__(self, cred: Credentials, methods: tuple[int, ...]) -> None:
        self.cred, self.methods = cred, methods
        self.method: PeerMethod | None = None
        self._last: tuple[bytes, bytes] | None = None  # (request, our response)
        self.rounds = 0  # requests answered (a retransmission is not a round)

    def answer(self, payload: bytes) -> bytes | None:
        """Our response to an EAP packet from the server, or None (not a request, malformed).
        MethodError when the method cannot go on (its `last`, if any, is to be sent still)."""
        try:
            req = eap.decode(payload)
        except ValueError:
            return None
        if req.code is not eap.EapCode.REQUEST:
            return None
        if self._last is not None and self._last[0] == payload:
            return self._last[1]
        if req.type == eap.TYPE_IDENTITY:
            self.method = None  # a new authentication begins
            ans = eap.identity_response(req.identifier, self.cred.identity)
        elif req.type == eap.TYPE_NOTIFICATION:
            ans = eap.EapPacket(eap.EapCode.RESPONSE, req.identifier, eap.TYPE_NOTIFICATION)
        elif req.type in self.methods and req.type in FACTORIES:
            ans = self._method(req).answer(req)
        else:
            ans = eap.nak(req.identifier, self.methods[0])
        out = eap.encode(ans)
        self._last = (payload, out)
        self.rounds += 1
        return out

    def _method(self, req: eap.EapPacket) -> PeerMethod:
        starts = req.type in MUTUAL and bool(req.data) and bool(req.data[0] & tls_frame.FLAG_S)
        if self.method is None or self.method.type != req.type or starts:
            try:
                self.method = FACTORIES[req.type](self.cred)  # type: ignore[index]
            except CredentialsError as e:
                raise MethodError(str(e)) from None
        return self.method

    @property
    def believes_success(self) -> bool:
        """Whether an EAP-Success now is credible: with a method whose server proves itself
        configured, only once such a method ran to its end (a success announced earlier, or
        after MD5 only, could come from anyone on the path)."""
        if not MUTUAL & set(self.methods):
            return True
        return self.method is not None and self.method.type in MUTUAL and self.method.finished

    def summary(self) -> str:
        """How we authenticated, for the log: "EAP-TLS (TLSv1.2 ECDHE-ECDSA-AES256-GCM-SHA384), 6 rounds"."""
        m = self.method
        name = f"EAP-{eap.METHODS.get(m.type, m.type).upper()}" if m is not None else "no method"
        tunnel = getattr(m, "tunnel", None)
        cipher = f" ({tunnel.cipher()})" if tunnel is not None and tunnel.cipher() else ""
        return f"{name}{cipher}, {self.rounds} rounds"

    @property
    def failure(self) -> str:
        """What the method learnt of a failure, if it did (PEAP: MSCHAPv2's error)."""
        return getattr(self.method, "failure", "") if self.method is not None else ""
