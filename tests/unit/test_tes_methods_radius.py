"""tenet-tes's EAP methods against the real FreeRADIUS, with no NVE between (tes/direct.py):
the lab's config (aaa/config.py) and PKI (lab/eap_pki.py) issued into a temporary directory,
FreeRADIUS on 127.0.0.1 at a free port, RadiusClient playing the authenticator. No root, no
namespaces: one server process for the module, stopped by its PID."""
from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tenet.aaa.config import render
from tenet.aaa.radius import RadiusClient
from tenet.aaa.server import FreeRadius
from tenet.lab.eap_pki import EapPki, issue_eap, make_ca, sign_client
from tenet.model.tenancy import AaaUser, EapMethod
from tenet.tes.direct import login
from tenet.tes.methods import Credentials
from tenet.tes.peer import NAMES, Peer

pytestmark = pytest.mark.skipif(shutil.which("freeradius") is None, reason="FreeRADIUS (Debian freeradius) is not installed")

SECRET = "tes-methods"
USERS = [AaaUser("tina", "", "n1", method=EapMethod.TLS),
         AaaUser("pete", "pw-pete", "n1", method=EapMethod.PEAP, rate="20mbit"),
         AaaUser("tom", "pw-tom", "n2", method=EapMethod.TTLS),
         AaaUser("mike", "pw-mike", "n1")]


def _free_port() -> int:
    """A UDP port free for the auth listener and the one above it (accounting)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
            a.bind(("127.0.0.1", 0))
            try:
                b.bind(("127.0.0.1", a.getsockname()[1] + 1))
            except OSError:
                continue
            return a.getsockname()[1]
    raise RuntimeError("no two adjacent free UDP ports")


class Server:
    def __init__(self, base: Path) -> None:
        self.pki = EapPki(base / "eap")
        issue_eap(self.pki, [u.name for u in USERS])
        self.other = EapPki(base / "other")  # a CA FreeRADIUS does not trust, and that does not trust it
        make_ca(self.other.ca, self.other.ca_key, cn="elsewhere-ca")
        self.base = base
        self.port = _free_port()
        run = base / "radius"
        server = FreeRadius(run, render(USERS, SECRET, "127.0.0.1", self.port, ["127.0.0.1"], str(run), str(self.pki.dir)))
        server.write()
        server.check()
        self.log = base / "radius.log"
        self.proc = subprocess.Popen(server.argv(), stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while "Ready to process requests" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"FreeRADIUS did not start:\n{self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def cred(self, user: str, password: str = "", **kw) -> Credentials:
        return Credentials(user, password, str(self.pki.ca), str(self.pki.client_cert(user)),
                           str(self.pki.client_key(user)), **kw)

    def login(self, cred: Credentials, method: str):
        return login(RadiusClient("127.0.0.1", SECRET, self.port, timeout=3.0), Peer(cred, (NAMES[method],)))


@pytest.fixture(scope="module")
def radius(tmp_path_factory):
    s = Server(tmp_path_factory.mktemp("radius"))
    yield s
    s.stop()


@pytest.mark.parametrize("fragment", [1024, 200, 64])
def test_tls_accepts_at_any_fragment_size(radius, fragment):
    """Our flight (certificate, key exchange, verify, finished: ~1 KB) goes in fragments the
    server acknowledges; the server's (~1 KB at its fragment_size 1024) comes in fragments we
    acknowledge."""
    r = radius.login(radius.cred("tina", fragment_size=fragment), "tls")
    assert r.accepted, (r.reply, r.error)
    assert r.reply.provisioning.vn == "n1"
    assert r.rounds >= (5 if fragment == 1024 else 10)
    assert r.peer.method.tunnel.cipher().startswith("TLSv1.2")


def test_peap_mschapv2_accepts_and_the_grant_comes_from_the_inner_user(radius):
    r = radius.login(radius.cred("pete", "pw-pete"), "peap")
    assert r.accepted, (r.reply, r.error)
    assert r.peer.method.proved  # the server's MSCHAPv2 authenticator response checked out
    assert (r.reply.provisioning.vn, r.reply.provisioning.rate_down_bps) == ("n1", 20_000_000)


def test_ttls_pap_accepts(radius):
    r = radius.login(radius.cred("tom", "pw-tom"), "ttls")
    assert r.accepted, (r.reply, r.error)
    assert r.reply.provisioning.vn == "n2"


def test_md5_still_works_through_the_same_peer(radius):
    r = radius.login(radius.cred("mike", "pw-mike"), "md5")
    assert r.accepted and r.rounds == 2


@pytest.mark.parametrize("user, method", [("pete", "peap"), ("tom", "ttls")])
def test_wrong_password_is_rejected(radius, user, method):
    r = radius.login(radius.cred(user, "not-the-password"), method)
    assert r.reply.code == "reject" and not r.accepted
    if method == "peap":  # the tunnel's own verdict came first, and the TES can say it
        assert "inner authentication failed" in r.peer.failure


def test_client_certificate_from_another_ca_is_rejected(radius, tmp_path):
    sign_client(radius.pki, "tina", tmp_path / "c.pem", tmp_path / "k.pem", radius.other.ca, radius.other.ca_key)
    r = radius.login(Credentials("tina", "", str(radius.pki.ca), str(tmp_path / "c.pem"), str(tmp_path / "k.pem")), "tls")
    assert r.reply.code == "reject"


def test_expired_client_certificate_is_rejected(radius, tmp_path):
    sign_client(radius.pki, "tina", tmp_path / "c.pem", tmp_path / "k.pem", expired=True)
    r = radius.login(Credentials("tina", "", str(radius.pki.ca), str(tmp_path / "c.pem"), str(tmp_path / "k.pem")), "tls")
    assert r.reply.code == "reject"


def test_a_certificate_naming_someone_else_is_rejected(radius):
    """check_cert_cn: tina may not log in with tom's (valid) certificate."""
    r = radius.login(Credentials("tina", "", str(radius.pki.ca), str(radius.pki.client_cert("tom")),
                                 str(radius.pki.client_key("tom"))), "tls")
    assert r.reply.code == "reject"


@pytest.mark.parametrize("method", ["tls", "peap", "ttls"])
def test_a_server_our_ca_did_not_sign_is_refused_by_us(radius, method):
    user, pw = {"tls": ("tina", ""), "peap": ("pete", "pw-pete"), "ttls": ("tom", "pw-tom")}[method]
    cred = Credentials(user, pw, str(radius.other.ca), str(radius.pki.client_cert(user)), str(radius.pki.client_key(user)))
    r = radius.login(cred, method)
    assert not r.accepted and r.error.startswith("server certificate not trusted")
    assert r.reply.code != "accept"  # our alert ended it before any password went out


def test_server_name_is_checked_when_given(radius):
    assert radius.login(radius.cred("pete", "pw-pete", server_name="tenet-radius"), "peap").accepted
    r = radius.login(radius.cred("pete", "pw-pete", server_name="radius.example"), "peap")
    assert not r.accepted and "radius.example" in r.error


def test_a_method_the_user_may_not_use_is_refused_by_the_server(radius):
    """pete is a PEAP user: FreeRADIUS refuses our NAK proposing TTLS."""
    r = radius.login(radius.cred("pete", "pw-pete"), "ttls")
    assert r.reply.code == "reject"


def test_a_lab_ca_certificate_for_no_user_is_rejected(radius, tmp_path):
    """A certificate the CA issued to a name with no AAA user (a user since removed keeps
    its certificate): the certificate alone must not be enough."""
    sign_client(radius.pki, "nobody", tmp_path / "c.pem", tmp_path / "k.pem")
    r = radius.login(Credentials("nobody", "", str(radius.pki.ca), str(tmp_path / "c.pem"), str(tmp_path / "k.pem")), "tls")
    assert r.reply.code == "reject", r.reply
