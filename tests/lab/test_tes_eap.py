"""tenet-tes with EAP-TLS, PEAP and TTLS through the NVE to the lab's FreeRADIUS, over the L2
transport (VMs behind hypervisor h1) and the UDP one (server s1 behind a router): real frames,
real certificates, ten-round exchanges relayed by the NVE's admission process."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from capture import Capture
from waiting import wait
from tenet.lab.eap_pki import EapPki, make_ca, sign_client
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).with_name("tes_eap.yaml")


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        for vm in ("T", "P", "Q", "M", "s1"):
            lab.wait_attached(vm, timeout=30)
        yield lab


def tes_log(lab, node: str) -> str:
    return Path(lab.process("tes", node).log).read_text()


def radius_log(lab) -> str:
    return Path(lab.process("radius", "aaa").log).read_text()


@pytest.mark.parametrize("vm, user, method", [("T", "tina", "EAP-TLS"), ("P", "pete", "EAP-PEAP"), ("Q", "tom", "EAP-TTLS")])
def test_tes_attaches_over_l2_and_forwards(lab, vm, user, method):
    ep = lab.endpoints()[lab.mac(vm)]
    assert (ep["identity"], ep["vn"], ep["host"]) == (user, "n1", "h1")
    assert lab.exec(vm, "ping", "-c3", "-i0.2", "-W2", "10.71.0.1").returncode == 0  # S, across the router
    said = re.findall(r"authenticated with (EAP-\w+) \((TLSv1\.2) [\w-]+\), (\d+) rounds", tes_log(lab, f"{vm}.eth0"))
    assert said and said[0][0] == method and int(said[0][2]) >= 4, tes_log(lab, f"{vm}.eth0")[-2000:]
    assert f"Login OK: [{user}" in radius_log(lab)


def test_tls_certificate_flight_crosses_the_nve_in_fragments(lab):
    """T's exchange: the server's certificate flight (FreeRADIUS fragment_size 1024) came in
    fragments T acknowledged, T's own (~1 KB: certificate, key exchange, verify, finished)
    went in fragments too — all relayed as NVO3 EAP messages by h1."""
    rounds = int(re.findall(r"EAP-TLS .*, (\d+) rounds", tes_log(lab, "T.eth0"))[0])
    assert rounds >= 5  # Start, server flight 2 fragments, ours 2 fragments, server Finished


def test_server_attaches_with_tls_over_udp_across_the_router(lab):
    s1 = next(s for s in lab.intent.servers if s.name == "s1")
    ep = lab.endpoints()[s1.nic.mac]
    assert (ep["identity"], ep["host"]) == ("sam", "h1") and ep["channel"].startswith("udp:")
    wait(lambda: lab.exec("s1", "ping", "-c1", "-W1", "10.71.0.1").returncode == 0, 10, "s1 reaching S")
    assert lab.exec("s1", "ping", "-c3", "-i0.2", "-W2", "10.71.0.11").returncode == 0  # P, on h1 over the tunnel
    assert re.search(r"authenticated with EAP-TLS \(TLSv1\.2 ", tes_log(lab, "s1"))


def test_certificate_from_another_ca_is_rejected_and_forwards_nothing(lab, tmp_path):
    """M's certificate is replaced by one from a CA FreeRADIUS does not trust and its TES
    restarted: its old session ends with the old TES (TERMINATE), the new one is rejected, and
    nothing it sends gets past its port."""
    m = lab.mac("M")
    assert lab.exec("M", "ping", "-c1", "-W2", "10.71.0.1").returncode == 0  # with the lab's certificate
    other = EapPki(tmp_path / "other")
    make_ca(other.ca, other.ca_key, cn="rogue-ca")
    sign_client(lab.eap_pki, "mallory", ca_cert=other.ca, ca_key=other.ca_key)  # over mallory's files
    before = tes_log(lab, "M.eth0").count("authentication failed")
    lab.start_tes("M")
    wait(lambda: tes_log(lab, "M.eth0").count("authentication failed") > before, 20, "M's rejection")
    wait(lambda: m not in lab.endpoints(), 10, "M's old session gone")
    with Capture(lab, "S", "eth0", "icmp or arp") as cap:
        r = lab.exec("M", "ping", "-c3", "-i0.2", "-W1", "10.71.0.1")
    assert r.returncode != 0
    assert cap.fields(f"eth.src == {m} || arp.src.proto_ipv4 == 10.71.0.13", "frame.number") == []
    assert m not in lab.endpoints()
    assert re.search(r"Login incorrect.*\[mallory", radius_log(lab))
    # the other TESs were not disturbed
    assert lab.exec("T", "ping", "-c2", "-i0.2", "-W2", "10.71.0.1").returncode == 0


def test_peap_reauthentication_runs_the_whole_method_again_in_the_same_session(lab):
    """Session-Timeout 3 s: h1 asks P's identity again and PEAP runs anew (a fresh TLS session,
    a fresh MSCHAPv2 exchange) while P stays attached with the same session, forwarding."""
    p = lab.mac("P")
    session = lab.endpoints()[p]["session"]
    done = radius_log(lab).count("Login OK: [pete")
    wait(lambda: radius_log(lab).count("Login OK: [pete") > done, 10, "P's re-authentication")
    assert lab.endpoints()[p]["session"] == session
    assert lab.exec("P", "ping", "-c3", "-i0.2", "-W2", "10.71.0.1").returncode == 0
    assert "re-authentication failed" not in tes_log(lab, "P.eth0")
