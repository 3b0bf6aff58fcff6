"""The lab's certificates for EAP: a private CA, the RADIUS server's certificate and one client
certificate per AAA user, issued at `up` into the lab's directory and gone with it at `down`.

EAP-TLS, PEAP and TTLS all start with the server proving itself with a certificate the
supplicant checks against a CA it was given; EAP-TLS then has the supplicant prove itself with
its own certificate, whose CN the server checks against the EAP identity (aaa/config.py:
check_cert_cn). Keys are EC P-256 (cheap handshakes, the admission benchmark pays one per
attachment) and 0600. `sign_client` also makes what the negative tests need: a certificate from
another CA, or one that has expired.
"""
from __future__ import annotations

import datetime
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAYS = 30
CA_NAME = "tenet-eap-ca"
SERVER_NAME = "tenet-radius"


@dataclass(frozen=True)
class EapPki:
    """Where the lab's EAP certificates and keys live (PEM files)."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca-key.pem"

    @property
    def server_cert(self) -> Path:
        return self.dir / "server.pem"

    @property
    def server_key(self) -> Path:
        return self.dir / "server-key.pem"

    def client_cert(self, user: str) -> Path:
        return self.dir / f"user-{user}.pem"

    def client_key(self, user: str) -> Path:
        return self.dir / f"user-{user}-key.pem"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tenet lab"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()))


def _load(cert: Path, key: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    k = serialization.load_pem_private_key(key.read_bytes(), None)
    assert isinstance(k, ec.EllipticCurvePrivateKey)
    return x509.load_pem_x509_certificate(cert.read_bytes()), k


def make_ca(cert: Path, key: Path, cn: str = CA_NAME, days: int = DAYS) -> None:
    """A self-signed CA (another one than the lab's makes the "foreign CA" negative case)."""
    k = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    c = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(k.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
         .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
         .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(k.public_key()), critical=False)
         .sign(k, hashes.SHA256()))
    cert.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    _write_key(key, k)


def _sign(cert: Path, key: Path, cn: str, usage: x509.ObjectIdentifier, ca_cert: Path, ca_key: Path,
          not_before: datetime.datetime, not_after: datetime.datetime) -> None:
    issuer, issuer_key = _load(ca_cert, ca_key)
    k = ec.generate_private_key(ec.SECP256R1())
    c = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(issuer.subject).public_key(k.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(True, False, False, False, True, False, False, False, False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
         .sign(issuer_key, hashes.SHA256()))
    cert.write_bytes(c.public_bytes(serialization.Encoding.PEM))
    _write_key(key, k)


def sign_client(pki: EapPki, user: str, cert: Path | None = None, key: Path | None = None,
                ca_cert: Path | None = None, ca_key: Path | None = None, days: int = DAYS, expired: bool = False) -> None:
    """A client certificate for `user` (CN = the user: the EAP identity it must match), by the
    lab's CA or another; `expired`: valid for a day a month ago."""
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = (now - datetime.timedelta(days=31), now - datetime.timedelta(days=30)) if expired else \
        (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days))
    _sign(cert or pki.client_cert(user), key or pki.client_key(user), user, ExtendedKeyUsageOID.CLIENT_AUTH,
          ca_cert or pki.ca, ca_key or pki.ca_key, start, end)


def issue_eap(pki: EapPki, users: Iterable[str]) -> None:
    """A new CA, the RADIUS server's certificate, and a client certificate per user."""
    make_ca(pki.ca, pki.ca_key)
    now = datetime.datetime.now(datetime.timezone.utc)
    _sign(pki.server_cert, pki.server_key, SERVER_NAME, ExtendedKeyUsageOID.SERVER_AUTH, pki.ca, pki.ca_key,
          now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=DAYS))
    for user in users:
        sign_client(pki, user)
