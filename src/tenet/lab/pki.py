"""The lab's certificates and passwords for etcd, made with openssl as an operator would.

One CA; one certificate per etcd member (its management IP as subjectAltName, CN `etcd-peer`
so members accept only each other as peers); one client certificate per user, with no CN; and
a password file per etcd user. Keys and passwords are 0600. The same steps by hand:

    # the CA (keep ca-key.pem off the hosts in production)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 \\
        -subj /CN=tenet-etcd-ca -keyout ca-key.pem -out ca.pem
    # a member: a server certificate that is a client one too (etcd 3.4's JSON gateway dials
    # its own gRPC port with it, and members use it towards each other)
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=etcd-peer \\
        -keyout etcd1-key.pem -out etcd1.csr
    printf 'subjectAltName=IP:198.19.254.2\\nextendedKeyUsage=serverAuth,clientAuth\\n' > etcd1.ext
    openssl x509 -req -in etcd1.csr -CA ca.pem -CAkey ca-key.pem -set_serial 0x$(openssl rand -hex 8) \\
        -days 30 -extfile etcd1.ext -out etcd1.pem
    # a client (root, controller, agent-<host>): no CN -- with auth on, etcd refuses a client
    # certificate with a CommonName on its JSON gateway (it could not pass the name on); who
    # the client is, is its etcd user and password; the certificate only lets it connect
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /O=tenet/OU=agent-h1 \\
        -keyout agent-h1-key.pem -out agent-h1.csr
    printf 'extendedKeyUsage=clientAuth\\n' > agent-h1.ext
    openssl x509 -req -in agent-h1.csr -CA ca.pem -CAkey ca-key.pem -set_serial 0x$(openssl rand -hex 8) \\
        -days 30 -extfile agent-h1.ext -out agent-h1.pem
    # a password per etcd user
    umask 077; openssl rand -base64 24 > agent-h1.password
"""
from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

DAYS = "30"
CURVE = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]  # cheap handshakes: an agent connects per watch
PEER_CN = "etcd-peer"  # members accept peers with this CN only (--peer-cert-allowed-cn)


class PkiError(RuntimeError):
    pass


@dataclass(frozen=True)
class Pki:
    """Where the lab's certificates, keys and passwords live."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.pem"

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.pem"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}-key.pem"

    def password(self, user: str) -> Path:
        return self.dir / f"{user}.password"


def _openssl(*args: str | Path) -> None:
    r = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise PkiError(f"openssl {args[0]} failed: {r.stderr.strip()}")


def _sign(pki: Pki, name: str, subject: str, extensions: str) -> None:
    csr, ext = pki.dir / f"{name}.csr", pki.dir / f"{name}.ext"
    ext.write_text(extensions + "\n")
    _openssl("req", *CURVE, "-nodes", "-subj", subject, "-keyout", pki.key(name), "-out", csr)
    _openssl("x509", "-req", "-in", csr, "-CA", pki.ca, "-CAkey", pki.dir / "ca-key.pem",
             "-set_serial", f"0x{secrets.token_hex(8)}", "-days", DAYS, "-extfile", ext, "-out", pki.cert(name))
    os.chmod(pki.key(name), 0o600)
    csr.unlink()
    ext.unlink()


def issue(pki: Pki, members: Mapping[str, str], clients: Sequence[str]) -> None:
    """A new CA, a certificate per member (name -> IP) and per client name."""
    pki.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _openssl("req", "-x509", *CURVE, "-nodes", "-days", DAYS, "-subj", "/CN=tenet-etcd-ca",
             "-keyout", pki.dir / "ca-key.pem", "-out", pki.ca)
    os.chmod(pki.dir / "ca-key.pem", 0o600)
    for name, ip in members.items():
        _sign(pki, name, f"/CN={PEER_CN}", f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth,clientAuth")
    for name in clients:
        _sign(pki, name, f"/O=tenet/OU={name}", "extendedKeyUsage=clientAuth")


def passwords(pki: Pki, users: Sequence[str]) -> dict[str, str]:
    """A new random password per user, each written to its own 0600 file."""
    out = {}
    for user in users:
        out[user] = secrets.token_urlsafe(24)
        fd = os.open(pki.password(user), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(out[user] + "\n")
    return out
