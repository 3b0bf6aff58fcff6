"""The lab's FreeRADIUS, driven directly by a standard RADIUS/EAP client (eapol_test, from
hostapd): each user authenticates with its method and gets its grant, any other method or
credential is refused, and both RADIUS servers answer. What tenet's NVE relays (the switch's
802.1X, NVO3) is tested in test_supplicants.py and test_tes_eap.py; this is the server alone."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tenet.lab.eap_pki import make_ca, sign_client
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).with_name("eap_methods.yaml")


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


def eapol_test(lab, tmp_path, name: str, server: str = "ra", **network: str):
    """Run one authentication from h1 against a RADIUS server: (succeeded, output)."""
    conf = tmp_path / f"{name}.conf"
    body = "\n".join(f"  {k}={v}" if k in ("eap", "key_mgmt") else f'  {k}="{v}"' for k, v in network.items())
    conf.write_text("network={\n  key_mgmt=IEEE8021X\n" + body + "\n}\n")
    ip = next(a.ip for a in lab.plan.aaa if a.name == server)
    secret = (lab.record.dir / "radius.secret").read_text().strip()
    r = lab.exec("h1", "eapol_test", "-c", str(conf), "-a", ip, "-s", secret, "-n", "-t", "10",
                 "-M", "02:00:00:00:51:01", timeout=30)
    out = r.stdout + r.stderr
    return "CTRL-EVENT-EAP-SUCCESS" in out and "Access-Accept" in out, out


def granted_vn(out: str) -> str:
    """The Tunnel-Private-Group-Id of the Access-Accept (the VN), as eapol_test prints it."""
    m = re.findall(r"Attribute 81 \(Tunnel-Private-Group-Id\) length=\d+\s+Value: ([0-9a-f]+)", out)
    return bytes.fromhex(m[-1]).decode() if m else ""


def test_each_method_authenticates_and_gets_its_grant(lab, tmp_path):
    pki = lab.eap_pki
    ok, out = eapol_test(lab, tmp_path, "md5", eap="MD5", identity="mallory", password="m5pass")
    assert ok and granted_vn(out) == "n1", out[-1500:]
    ok, out = eapol_test(lab, tmp_path, "tls", eap="TLS", identity="alice", ca_cert=pki.ca,
                         client_cert=pki.client_cert("alice"), private_key=pki.client_key("alice"))
    assert ok and granted_vn(out) == "n1", out[-1500:]
    assert len(re.findall(r"Attribute 79 \(EAP-Message\)", out)) > 8  # certificates over several attributes
    ok, out = eapol_test(lab, tmp_path, "peap", eap="PEAP", identity="pete", anonymous_identity="anonymous",
                         password="p3ap pass", ca_cert=pki.ca, phase2="auth=MSCHAPV2")
    assert ok and granted_vn(out) == "n2", out[-1500:]  # the inner user's grant, the outer name anonymous
    ok, out = eapol_test(lab, tmp_path, "ttls", eap="TTLS", identity="tina", anonymous_identity="anonymous",
                         password="tt1s", ca_cert=pki.ca, phase2="auth=PAP")
    assert ok and granted_vn(out) == "n1", out[-1500:]


def test_the_secondary_server_answers_too(lab, tmp_path):
    pki = lab.eap_pki
    ok, out = eapol_test(lab, tmp_path, "tls-b", server="rb", eap="TLS", identity="bob", ca_cert=pki.ca,
                         client_cert=pki.client_cert("bob"), private_key=pki.client_key("bob"))
    assert ok and granted_vn(out) == "n2", out[-1500:]


def test_wrong_credentials_and_methods_are_refused(lab, tmp_path):
    pki = lab.eap_pki
    cases = {
        "peap, wrong password": dict(eap="PEAP", identity="pete", password="nope", ca_cert=pki.ca, phase2="auth=MSCHAPV2"),
        "ttls, wrong password": dict(eap="TTLS", identity="tina", password="nope", ca_cert=pki.ca, phase2="auth=PAP"),
        "a peap user over md5": dict(eap="MD5", identity="pete", password="p3ap pass"),
        "a ttls user over peap": dict(eap="PEAP", identity="tina", password="tt1s", ca_cert=pki.ca, phase2="auth=MSCHAPV2"),
        "alice's certificate, bob's name": dict(eap="TLS", identity="bob", ca_cert=pki.ca,
                                                client_cert=pki.client_cert("alice"), private_key=pki.client_key("alice")),
        "a tls user over md5": dict(eap="MD5", identity="alice", password="anything"),
    }
    for why, network in cases.items():
        ok, out = eapol_test(lab, tmp_path, why.replace(" ", "_").replace(",", "").replace("'", ""), **network)
        assert not ok, why
        assert "Access-Reject" in out, (why, out[-1500:])


def test_certificates_from_another_ca_or_expired_are_refused(lab, tmp_path):
    pki = lab.eap_pki
    make_ca(tmp_path / "rogue-ca.pem", tmp_path / "rogue-ca-key.pem", cn="rogue-ca")
    sign_client(pki, "alice", tmp_path / "rogue.pem", tmp_path / "rogue-key.pem",
                ca_cert=tmp_path / "rogue-ca.pem", ca_key=tmp_path / "rogue-ca-key.pem")
    sign_client(pki, "alice", tmp_path / "old.pem", tmp_path / "old-key.pem", expired=True)
    for why, cert in {"another CA": "rogue", "expired": "old"}.items():
        ok, out = eapol_test(lab, tmp_path, cert, eap="TLS", identity="alice", ca_cert=pki.ca,
                             client_cert=tmp_path / f"{cert}.pem", private_key=tmp_path / f"{cert}-key.pem")
        assert not ok, why
        assert "Access-Reject" in out, (why, out[-1500:])
