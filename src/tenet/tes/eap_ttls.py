"""EAP-TTLS (RFC 5281) with PAP inside, on the peer side.

The server proves itself with its certificate (as in EAP-TLS); we then prove ourselves with
User-Name and User-Password AVPs (RFC 5281 §11.2.5) sent through the tunnel, in the clear to
the server only. The server's answer is the outer EAP-Success or -Failure.
"""
from __future__ import annotations

from tenet.tes.eap_tls import TlsMethod, TlsTunnel
from tenet.wire import diameter, tls_frame


class EapTtls(TlsMethod):
    type = tls_frame.TYPE_TTLS
    client_cert = False  # the password is the client's proof (a certificate could be added)
    max_version = 0

    def established(self, tunnel: TlsTunnel) -> None:
        tunnel.send(diameter.pap(self.cred.identity, self.cred.password))
        self.finished = True

    def inner(self, tunnel: TlsTunnel, data: bytes) -> None:
        """PAP asks nothing more; a Reply-Message (or anything else) is only acknowledged."""
