"""EAP-TLS (RFC 5216) on the peer side, and the TLS conversation EAP-TTLS and PEAP build on.

TLS runs over memory BIOs (`ssl.SSLObject`): the TLS records it writes leave in EAP packets,
whatever carries those (an NVO3 session, RADIUS in a test), and what the server sends is fed
back in. The framing (L/M/S flags, fragments, acknowledgements) is `wire/tls_frame.py`.

TLS 1.2 at most: FreeRADIUS 3.2 negotiates nothing newer by default, and TTLS and PEAP over
TLS 1.3 (RFC 9427) change the key derivation and the end of the handshake.
"""
from __future__ import annotations

import ssl
from collections import deque
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tenet.tes.methods import Credentials, CredentialsError, MethodError, response
from tenet.wire import eap, tls_frame
from tenet.wire.errors import DecodeError
from tenet.wire.tls_frame import Reassembly


def _readable(what: str, path: str) -> None:
    if not path:
        raise CredentialsError(f"no {what} given")
    p = Path(path)
    if not p.is_file():
        raise CredentialsError(f"{what} {path}: no such file")
    try:
        p.read_bytes()
    except OSError as e:
        raise CredentialsError(f"{what} {path}: cannot read it ({e.strerror})") from None


def _pem(what: str, path: str) -> None:
    """The certificate or key in `path` parses (OpenSSL's own complaint would be "PEM lib")."""
    data = Path(path).read_bytes()
    try:
        if what == "private key":
            serialization.load_pem_private_key(data, None)
        else:
            x509.load_pem_x509_certificate(data)
    except TypeError:
        raise CredentialsError(f"private key {path} is encrypted: give tenet-tes an unencrypted key (mode 0600)") from None
    except ValueError:
        raise CredentialsError(f"{what} {path} is not a PEM {what}") from None


def _encrypted(*_: object) -> bytes:
    raise CredentialsError("the private key is encrypted: give tenet-tes an unencrypted key (mode 0600)")


def context(cred: Credentials, client_cert: bool) -> ssl.SSLContext:
    """The client's TLS context: the server must present a certificate from `cred.ca` (and name
    `cred.server_name`, if given); with `client_cert`, ours is presented. Every file problem is
    a CredentialsError naming the file."""
    _readable("CA certificate", cred.ca)
    _pem("CA certificate", cred.ca)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = bool(cred.server_name)
    ctx.hostname_checks_common_name = True  # a RADIUS server certificate often names itself in the CN only
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cafile=cred.ca)
    if client_cert:
        _readable("client certificate", cred.cert)
        _readable("private key", cred.key)
        _pem("client certificate", cred.cert)
        _pem("private key", cred.key)
        try:
            ctx.load_cert_chain(cred.cert, cred.key, password=_encrypted)
        except ssl.SSLError as e:
            why = {"KEY_VALUES_MISMATCH": "the key does not belong to the certificate"}.get(e.reason or "", e.reason or str(e))
            raise CredentialsError(f"client certificate {cred.cert} with key {cred.key}: {why}") from None
    return ctx


class TlsTunnel:
    """One TLS client session over memory: `receive` the server's records, take what to send
    from `pending`, `send` application data once `established`."""

    def __init__(self, ctx: ssl.SSLContext, server_name: str = "") -> None:
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_side=False, server_hostname=server_name or None)
        self.established = False
        self._step()  # the ClientHello

    def _step(self) -> bytes:
        if not self.established:
            try:
                self.tls.do_handshake()
                self.established = True
            except ssl.SSLWantReadError:
                return b""
        data = b""
        while True:
            try:
                chunk = self.tls.read(16384)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                return data
            if not chunk:
                return data
            data += chunk

    def receive(self, records: bytes) -> bytes:
        """Feed the server's records; the application data they carried (b"" during the
        handshake). ssl.SSLError when TLS fails (then `pending` holds our alert)."""
        self.incoming.write(records)
        return self._step()

    def send(self, data: bytes) -> None:
        self.tls.write(data)

    def pending(self) -> bytes:
        return self.outgoing.read()

    def cipher(self) -> str:
        c = self.tls.cipher()
        return f"{self.tls.version()} {c[0]}" if c else ""


def _why(e: ssl.SSLError) -> str:
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"server certificate not trusted: {e.verify_message}"
    return f"TLS failed: {e.reason or e}"


class TlsMethod:
    """The TLS conversation in EAP-TLS framing, for EAP-TLS itself and as the outer half of
    TTLS and PEAP (which override `established` and `inner`). A server Start (S) begins a
    fresh TLS session; a message in fragments is acknowledged fragment by fragment and fed to
    TLS whole; our flights leave in fragments of `fragment_size`, each sent when the server
    acknowledged the one before."""

    type = tls_frame.TYPE_TLS
    client_cert = True
    max_version = 0  # of the method (TTLS and PEAP carry one in the flags)

    def __init__(self, cred: Credentials) -> None:
        self.cred = cred
        self.ctx = context(cred, self.client_cert)
        self.tunnel: TlsTunnel | None = None
        self.version = 0
        self.rx = Reassembly()
        self.tx: deque[bytes] = deque()
        self.finished = False

    # -- what TTLS and PEAP change ----------------------------------------------------------
    def established(self, tunnel: TlsTunnel) -> None:
        """The handshake just completed: the server proved itself with a certificate from our CA."""
        self.finished = True

    def inner(self, tunnel: TlsTunnel, data: bytes) -> None:
        """Application data from the server (EAP-TLS has none to act on)."""

    # -- the framing --------------------------------------------------------------------------
    def answer(self, req: eap.EapPacket) -> eap.EapPacket:
        try:
            frame = tls_frame.decode(req.data)
        except DecodeError as e:
            raise MethodError(f"malformed {eap.METHODS.get(self.type, self.type)} packet: {e}") from None
        if frame.start:
            self.version = min(frame.version, self.max_version)
            self.tunnel, self.rx, self.tx, self.finished = TlsTunnel(self.ctx, self.cred.server_name), Reassembly(), deque(), False
            return self._next(req)
        if self.tunnel is None:
            raise MethodError("the server sent TLS data before its Start")
        if self.tx:  # we are sending a flight in fragments: this is the server's acknowledgement
            if not frame.is_ack:
                raise MethodError("the server sent data while our fragments were still going")
            return self._next(req)
        try:
            self.rx = self.rx.add(frame)
        except DecodeError as e:
            raise MethodError(f"the server's fragments do not add up: {e.reason}") from None
        if not self.rx.complete:
            return response(req, tls_frame.ack(self.version))
        records, self.rx = self.rx.data, Reassembly()
        tunnel = self.tunnel
        was = tunnel.established
        try:
            data = tunnel.receive(records)
            if tunnel.established and not was:
                self.established(tunnel)
            if data:
                self.inner(tunnel, data)
        except ssl.SSLError as e:
            alert = tunnel.pending()
            last = response(req, tls_frame.fragments(alert, self.cred.fragment_size, self.version)[0] if alert
                            else tls_frame.ack(self.version))
            raise MethodError(_why(e), last) from None
        return self._next(req)

    def _next(self, req: eap.EapPacket) -> eap.EapPacket:
        """Our next fragment, or an acknowledgement when we have nothing to say."""
        assert self.tunnel is not None
        if not self.tx:
            out = self.tunnel.pending()
            if out:
                self.tx.extend(tls_frame.fragments(out, self.cred.fragment_size, self.version))
        return response(req, self.tx.popleft() if self.tx else tls_frame.ack(self.version))


class EapTls(TlsMethod):
    """EAP-TLS: both sides prove themselves with certificates; nothing runs inside."""
