"""Servers with their own supplicants (issue 19): the real wpa_supplicant (driver wired) on
servers cabled to access switch tor1 authenticates with EAP-TLS, PEAP-MSCHAPv2, TTLS-PAP and
EAP-MD5 through tenet's authenticator and the lab's FreeRADIUS; each is put into the VN RADIUS
names, beside a proxy host's VM on the same switch. A client certificate from another CA, an
expired one, a wrong PEAP password and a supplicant that stops mid-exchange end in a reject or
a timeout: no data forwarded, no authorization left."""
from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from capture import Capture
from waiting import wait
from tenet.lab.eap_pki import make_ca, sign_client
from tenet.lab.lab import Lab
from tenet.lab.metrics import scrape
from tenet.model.tenancy import switch_port_name

TOPOLOGY = Path(__file__).with_name("supplicants.yaml")
GOOD = ("stls", "speap", "sttls", "smd5")
STARTS_GOOD = ("xca", "xold", "xstop")  # negative cases made from authorized servers
RADIUS_AVP_EAP_MESSAGE, RADIUS_AVP_STATE, RADIUS_AVP_FRAMED_MTU = "79", "24", "12"


def server(lab, name):
    return next(s for s in lab.intent.servers if s.name == name)


def mac(lab, name):
    return server(lab, name).nic.mac


def ping(lab, node, ip, count=2):
    return lab.exec(node, "ping", "-c", str(count), "-i0.2", "-W1", ip).returncode == 0


def status(lab, name) -> dict[str, str]:
    """`wpa_cli status` of a server's supplicant, as key -> value."""
    return dict(line.split("=", 1) for line in lab.wpa_cli(name, "status").splitlines() if "=" in line)


def log_since(lab, name, offset):
    return Path(lab.process("supplicant", name).log).read_text()[offset:]


def log_size(lab, name):
    return len(Path(lab.process("supplicant", name).log).read_text())


def switch_metric(lab, sample, **labels) -> float:
    """A sample of tor1's agent (its admission metrics included), 0 when absent."""
    p = lab.process("agent", "tor1")
    for f in text_string_to_metric_families(scrape(p.metrics, p.netns)):
        for s in f.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def rx_packets(lab, port) -> int:
    """Frames the switch has received on a port (its kernel counter)."""
    return json.loads(lab.exec("tor1", "ip", "-s", "-j", "link", "show", port).stdout)[0]["stats64"]["rx"]["packets"]


def rewrite(lab, name, **settings):
    """Change (or, with None, remove) lines of a server's supplicant configuration."""
    conf = lab.supplicant_conf(name)
    lines = []
    for line in conf.read_text().splitlines():
        key = line.strip().split("=", 1)[0]
        if key in settings:
            if settings[key] is not None:
                lines.append(f'\t{key}="{settings[key]}"')
            continue
        lines.append(line)
    conf.write_text("\n".join(lines) + "\n")


def authenticate_again(lab, name):
    """Log off (the switch deauthorizes the MAC at once), re-read the configuration, log on:
    a fresh EAPOL-Start and a fresh exchange with whatever the configuration now holds."""
    assert lab.wpa_cli(name, "logoff").strip() == "OK"
    wait(lambda: mac(lab, name) not in lab.endpoints(), 10, f"{name} deauthorized by its EAPOL-Logoff")
    assert lab.wpa_cli(name, "reconfigure").strip() == "OK"
    assert lab.wpa_cli(name, "logon").strip() == "OK"


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        want = {mac(lab, s) for s in GOOD + STARTS_GOOD} | {lab.mac("V"), lab.mac("P"), lab.mac("T")}
        wait(lambda: want <= set(lab.endpoints()), 30, "the servers and V authorized")
        lab.wait_converged(20)
        yield lab


@pytest.mark.parametrize("name, method, vn, seen_as", [
    ("stls", "13 (EAP-TLS)", "n2", "srv-tls"),
    ("speap", "25 (EAP-PEAP)", "n3", "srv-peap"),  # outside the tunnel "anonymous"; the Accept names the inner user
    ("sttls", "21 (EAP-TTLS)", "n2", "srv-ttls"),
    ("smd5", "4 (EAP-MD5)", "n3", "srv-md5"),
])
def test_wpa_supplicant_is_authorized_into_the_vn_radius_names(lab, name, method, vn, seen_as):
    """PEAP and TTLS send `anonymous` outside the tunnel: the switch (and RADIUS's outer
    request) see only that, yet the VN is the inner user's — speap's user is in n3 — and so is
    the name the switch records: the Access-Accept's User-Name (RFC 2865 §5.1)."""
    st = status(lab, name)
    assert (st["Supplicant PAE state"], st["suppPortStatus"], st["EAP state"]) == ("AUTHENTICATED", "Authorized", "SUCCESS"), st
    assert st["selectedMethod"] == method
    ep = lab.endpoints()[mac(lab, name)]
    assert (ep["host"], ep["port"], ep["vn"], ep["identity"]) == ("tor1", switch_port_name(name), vn, seen_as)


def test_the_host_vouches_for_its_vms_with_peap_and_ttls(lab):
    """host6 answers PEAP-MSCHAPv2 and TTLS-PAP for P and T (checking the server's certificate
    against the lab's CA), with their MACs: each authorized into its user's VN, by its name."""
    for vm, vn, identity in (("P", "n3", "vm-p"), ("T", "n2", "vm-t")):
        ep = lab.endpoints()[lab.mac(vm)]
        assert (ep["host"], ep["port"], ep["vn"], ep["identity"]) == ("tor1", switch_port_name("host6"), vn, identity)
    assert ping(lab, "P", "10.64.0.1") and lab.mac("Z") in lab.exec("P", "ip", "neigh", "show", "10.64.0.1").stdout
    assert ping(lab, "T", "10.64.0.1") and lab.mac("S") in lab.exec("T", "ip", "neigh", "show", "10.64.0.1").stdout
    assert not ping(lab, "P", "10.64.0.22")  # T is n2's
    log = Path(lab.process("proxy", "host6").log).read_text()
    assert "EAP for " + lab.mac("P") in log


def test_servers_reach_their_vn_and_only_it(lab):
    """n2 and n3 share 10.64.0.0/24 and both hold 10.64.0.1 (S and Z)."""
    assert ping(lab, "stls", "10.64.0.1")  # S on h1: translated across pn1
    assert lab.mac("S") in lab.exec("stls", "ip", "neigh", "show", "10.64.0.1").stdout
    assert ping(lab, "stls", "10.64.0.3")  # S3 on h3, behind the router: VXLAN
    assert ping(lab, "stls", "10.64.0.33")  # sttls: another port of the same switch
    assert ping(lab, "sttls", "10.64.0.20")  # V, host6's VM behind another port: mixed ports
    assert ping(lab, "speap", "10.64.0.1")  # Z, n3's 10.64.0.1
    assert lab.mac("Z") in lab.exec("speap", "ip", "neigh", "show", "10.64.0.1").stdout
    assert ping(lab, "smd5", "10.64.0.32")  # speap, n3 on the same switch
    assert not ping(lab, "speap", "10.64.0.3")  # S3 is n2's
    assert not ping(lab, "stls", "10.64.0.32")  # speap is n3's
    assert not ping(lab, "smd5", "10.64.0.20")  # V is n2's


def test_a_servers_grant_from_radius_holds_on_its_port(lab):
    """srv-ttls's Accept says 20 Mbit/s (from the inner user, through the tunnel): its own
    class on sttls's port; stls's port has none."""
    assert "rate 20Mbit ceil 20Mbit" in lab.exec("tor1", "tc", "class", "show", "dev", switch_port_name("sttls")).stdout
    assert "rate 20Mbit" not in lab.exec("tor1", "tc", "class", "show", "dev", switch_port_name("stls")).stdout


def test_eap_tls_is_relayed_in_fragments_with_its_state(lab):
    """A whole EAP-TLS exchange again (wpa_cli reassociate: a new EAPOL-Start): the server's
    certificate flight and the client's come as EAPOL frames over 1000 bytes, each one
    Access-Request or -Challenge carrying several EAP-Message attributes; every request after
    the first carries the State of the challenge before it."""
    name, port = "stls", switch_port_name("stls")
    before = log_size(lab, name)
    with Capture(lab, "tor1", port, "ether proto 0x888e") as eapol, Capture(lab, "tor1", "up0", "udp port 1812") as radius:
        assert lab.wpa_cli(name, "reassociate").strip() == "OK"
        wait(lambda: "CTRL-EVENT-EAP-SUCCESS" in log_since(lab, name, before), 15, "EAP-TLS again")
    frames = [(int(n), src, int(code)) for n, src, code in eapol.fields("eap.type == 13", "frame.len", "eth.src", "eap.code")]
    assert sum(1 for _, src, code in frames if src == mac(lab, name) and code == 2) >= 3, frames  # TLS rounds
    assert max(n for n, src, _ in frames if src != mac(lab, name)) > 1000, frames  # the server's flight, toward it
    assert max(n for n, src, _ in frames if src == mac(lab, name)) > 1000, frames  # its certificate, from it
    cli = mac(lab, name).replace(":", "-").upper()
    rows = radius.fields("radius", "radius.code", "radius.id", "radius.Calling_Station_Id", "radius.avp.type",
                         args=("-E", "occurrence=a"))
    ours = {ident for code, ident, calling, _ in rows if code == "1" and calling == cli}  # stls's requests …
    packets = [(int(code), types.split(",")) for code, ident, calling, types in rows
               if ident in ours and (code != "1" or calling == cli)]  # … and the answers to them
    requests = [t for code, t in packets if code == 1]
    assert len(requests) >= 4 and [code for code, _ in packets][-1] == 2, packets  # Access-Accept last
    assert all(RADIUS_AVP_STATE in t for t in requests[1:]), requests
    assert any(t.count(RADIUS_AVP_EAP_MESSAGE) >= 4 for t in requests), requests  # split over attributes …
    assert any(t.count(RADIUS_AVP_EAP_MESSAGE) >= 4 for code, t in packets if code == 11), packets  # … both ways
    assert (mac(lab, name)) in lab.endpoints()
    assert ping(lab, name, "10.64.0.1")


def test_every_eap_access_request_carries_framed_mtu(lab):
    """So the RADIUS server fragments EAP-TLS to fit the port (RFC 3579 §2.4)."""
    name = "smd5"
    before = log_size(lab, name)
    with Capture(lab, "tor1", "up0", "udp port 1812") as radius:
        assert lab.wpa_cli(name, "reassociate").strip() == "OK"
        wait(lambda: "CTRL-EVENT-EAP-SUCCESS" in log_since(lab, name, before), 15, "EAP-MD5 again")
    requests = [t.split(",") for (t,) in radius.fields("radius.code == 1", "radius.avp.type", args=("-E", "occurrence=a"))]
    assert requests and all(RADIUS_AVP_FRAMED_MTU in t for t in requests), requests


def no_data_forwarded(lab, name, ip, target, target_mac):
    """`name` (address `ip`) pings `target` — by ARP, and then straight to its MAC as if it
    knew it — and gets nothing; the switch received its frames (the port's counter grows)
    and sent none of them on: nothing from it leaves tor1's uplink, translated or in VXLAN
    (tshark looks inside both)."""
    port = switch_port_name(name)
    before = rx_packets(lab, port)
    with Capture(lab, "tor1", "up0") as up:
        assert not ping(lab, name, target, count=3)
        lab.exec(name, "ip", "neigh", "replace", target, "lladdr", target_mac, "dev", "eth0", check=True)
        try:
            assert not ping(lab, name, target, count=3)
        finally:
            lab.exec(name, "ip", "neigh", "del", target, "dev", "eth0")
    assert rx_packets(lab, port) - before >= 3 + 1  # three echo requests and an ARP request, at least: they arrived …
    assert up.fields(f"ip.src == {ip} || arp.src.proto_ipv4 == {ip} || eth.src == {mac(lab, name)}",
                     "frame.number") == []  # … and stopped at the switch


def no_authorization_left(lab, name, supplicant=True):
    """Neither in the store nor in the switch agent's own count: its authorized MACs are
    exactly those it reported (the gauge is counted every second); nor in the supplicant's
    view, if it still runs."""
    assert mac(lab, name) not in lab.endpoints()
    on_tor1 = lambda: sum(1 for e in lab.endpoints().values() if e["host"] == "tor1")  # noqa: E731
    wait(lambda: switch_metric(lab, "tenet_nve_sessions", kind="dot1x") == on_tor1(), 5, "the switch's count settled")
    if supplicant:
        assert status(lab, name)["suppPortStatus"] == "Unauthorized"


def test_a_wrong_peap_password_is_rejected_and_forwards_nothing(lab):
    """xpw speaks PEAP as srv-peap with a wrong password: MSCHAPv2 fails inside the tunnel,
    RADIUS rejects, the switch sends EAP-Failure and keeps the MAC out."""
    name = "xpw"
    wait(lambda: "CTRL-EVENT-EAP-FAILURE" in log_since(lab, name, 0), 15, "xpw's EAP-Failure")
    radius = Path(lab.process("radius", "aaa").log).read_text()
    cli = mac(lab, name).replace(":", "-").upper()
    assert any("Login incorrect (mschap" in line and "[srv-peap]" in line and cli in line for line in radius.splitlines())
    assert switch_metric(lab, "tenet_dot1x_authorizations_total", result="failure", method="peap") >= 1
    no_authorization_left(lab, name)
    no_data_forwarded(lab, name, "10.64.0.40", "10.64.0.1", lab.mac("Z"))


def test_a_client_certificate_from_another_ca_is_rejected(lab, tmp_path):
    """xca logs off, then comes back with a certificate for its own name signed by a CA the
    RADIUS server does not trust: the TLS handshake fails (unknown CA), no authorization."""
    name = "xca"
    make_ca(tmp_path / "other-ca.pem", tmp_path / "other-ca-key.pem", cn="another-ca")
    sign_client(lab.eap_pki, "srv-ca", cert=tmp_path / "c.pem", key=tmp_path / "k.pem",
                ca_cert=tmp_path / "other-ca.pem", ca_key=tmp_path / "other-ca-key.pem")
    rewrite(lab, name, client_cert=tmp_path / "c.pem", private_key=tmp_path / "k.pem")
    failures = switch_metric(lab, "tenet_dot1x_authorizations_total", result="failure", method="tls")
    before = log_size(lab, name)
    authenticate_again(lab, name)
    wait(lambda: "CTRL-EVENT-EAP-FAILURE" in log_since(lab, name, before), 15, "xca's EAP-Failure")
    radius = Path(lab.process("radius", "aaa").log).read_text()
    assert "unable to get local issuer certificate): [srv-ca]" in radius
    wait(lambda: switch_metric(lab, "tenet_dot1x_authorizations_total", result="failure", method="tls") > failures, 5,
         "the reject counted")
    no_authorization_left(lab, name)
    no_data_forwarded(lab, name, "10.64.0.41", "10.64.0.1", lab.mac("S"))


def test_an_expired_certificate_is_rejected_at_reauthentication(lab, tmp_path):
    """xold is authorized; its certificate is replaced by an expired one and it authenticates
    again while authorized (wpa_cli reconfigure: a new EAPOL-Start). The reject ends the
    authorization it had: the switch deauthorizes the MAC and its traffic stops."""
    name = "xold"
    assert ping(lab, name, "10.64.0.1")
    sign_client(lab.eap_pki, "srv-old", cert=tmp_path / "c.pem", key=tmp_path / "k.pem", expired=True)
    rewrite(lab, name, client_cert=tmp_path / "c.pem", private_key=tmp_path / "k.pem")
    before = log_size(lab, name)
    assert lab.wpa_cli(name, "reconfigure").strip() == "OK"
    wait(lambda: "CTRL-EVENT-EAP-FAILURE" in log_since(lab, name, before), 15, "xold's EAP-Failure")
    assert "certificate has expired): [srv-old]" in Path(lab.process("radius", "aaa").log).read_text()
    wait(lambda: mac(lab, name) not in lab.endpoints(), 5, "xold deauthorized")
    assert f"{mac(lab, name)} on {switch_port_name(name)} deauthorized: access rejected" in \
        Path(lab.process("agent", "tor1").log).read_text()
    lab.wait_converged(20)
    no_authorization_left(lab, name)
    no_data_forwarded(lab, name, "10.64.0.42", "10.64.0.1", lab.mac("S"))


def test_a_supplicant_that_stops_mid_exchange_is_given_up(lab):
    """xstop comes back without its password: PEAP's TLS tunnel is built (several rounds),
    then MSCHAPv2 inside it waits for a password nobody types — and the supplicant is killed
    there. The switch sends its last EAP-Request again (802.1X: 3 s, then 6 s later; maxReq
    2), gives the attempt up, and keeps nothing: no authorization, no exchange under way,
    nothing forwarded."""
    name, port = "xstop", switch_port_name("xstop")
    rewrite(lab, name, password=None)
    before = log_size(lab, name)
    radius_log = Path(lab.process("radius", "aaa").log)
    radius_before = len(radius_log.read_text())
    resent = switch_metric(lab, "tenet_nve_eap_retransmissions_total", kind="dot1x")
    timeouts = switch_metric(lab, "tenet_nve_eap_timeouts_total", kind="dot1x", side="supplicant")
    with Capture(lab, "tor1", port, "ether proto 0x888e") as eapol:
        authenticate_again(lab, name)
        wait(lambda: "CTRL-REQ-PASSWORD" in log_since(lab, name, before), 15, "PEAP stalled in phase 2")
        assert "CTRL-EVENT-EAP-PEER-CERT depth=0" in log_since(lab, name, before)  # the tunnel stood
        lab.stop_process("supplicant", name, signal.SIGKILL)  # gone without a Logoff
        wait(lambda: switch_metric(lab, "tenet_dot1x_exchanges") >= 1, 5, "the exchange held under way")
        assert mac(lab, name) not in lab.endpoints()
        wait(lambda: switch_metric(lab, "tenet_dot1x_exchanges") == 0, 60, "the exchange given up", every=0.5)
    assert switch_metric(lab, "tenet_nve_eap_timeouts_total", kind="dot1x", side="supplicant") == timeouts + 1
    assert switch_metric(lab, "tenet_nve_eap_retransmissions_total", kind="dot1x") >= resent + 2
    requests = [(float(t), int(i)) for t, i in eapol.fields(f"eth.dst == {mac(lab, name)} && eap.code == 1",
                                                            "frame.time_relative", "eap.id")]
    last = [t for t, i in requests if i == requests[-1][1]]  # the one it never answered, and its copies
    assert len(last) == 3, requests
    assert 2.5 <= last[1] - last[0] <= 4.5 and 5 <= last[2] - last[1] <= 8, last  # 3 s, then doubled
    assert mac(lab, name) not in lab.endpoints()
    assert "[srv-stop]" not in radius_log.read_text()[radius_before:]  # neither accepted nor rejected: abandoned
    no_authorization_left(lab, name, supplicant=False)
    no_data_forwarded(lab, name, "10.64.0.43", "10.64.0.1", lab.mac("S"))  # its address stays, its access does not


START = """
import socket, sys
from tenet.wire.eapol import PAE_GROUP, Eapol, EapolType, frame
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
s.send(frame(PAE_GROUP, sys.argv[1], Eapol(EapolType.START)))
"""


def test_an_eapol_start_nobody_follows_up_is_given_up(lab):
    """A supplicant that stops right after its EAPOL-Start (xstop's, its wpa_supplicant gone,
    one Start sent from its NIC): the switch asks for its identity three times (3 s, then 6 s
    apart) and then keeps nothing."""
    name, port = "xstop", switch_port_name("xstop")
    if mac(lab, name) in lab.endpoints():  # run alone: the test before did not end its access
        assert lab.wpa_cli(name, "logoff").strip() == "OK"
        wait(lambda: mac(lab, name) not in lab.endpoints(), 10, f"{name} deauthorized by its EAPOL-Logoff")
    lab.stop_process("supplicant", name, signal.SIGKILL)  # if the test before did not
    wait(lambda: switch_metric(lab, "tenet_dot1x_exchanges") == 0, 30, "no exchange under way")
    timeouts = switch_metric(lab, "tenet_nve_eap_timeouts_total", kind="dot1x", side="supplicant")
    with Capture(lab, "tor1", port, "ether proto 0x888e") as eapol:
        r = lab.exec(name, sys.executable, "-c", START, mac(lab, name))
        assert r.returncode == 0, r.stderr
        wait(lambda: switch_metric(lab, "tenet_dot1x_exchanges") >= 1, 5, "the switch connecting")
        wait(lambda: switch_metric(lab, "tenet_dot1x_exchanges") == 0, 40, "the attempt given up", every=0.5)
    assert switch_metric(lab, "tenet_nve_eap_timeouts_total", kind="dot1x", side="supplicant") == timeouts + 1
    asked = [(float(t), int(i)) for t, i in eapol.fields(f"eth.dst == {mac(lab, name)} && eap.code == 1 && eap.type == 1",
                                                         "frame.time_relative", "eap.id")]
    assert len(asked) == 3 and len({i for _, i in asked}) == 1, asked  # one Request-Identity, sent again twice
    assert 2.5 <= asked[1][0] - asked[0][0] <= 4.5 and 5 <= asked[2][0] - asked[1][0] <= 8, asked
    no_authorization_left(lab, name, supplicant=False)


def test_the_good_servers_were_untouched(lab):
    """After all the rejects and the timeout on the same switch: the good ones still forward."""
    for name, target in (("stls", "10.64.0.1"), ("speap", "10.64.0.1"), ("sttls", "10.64.0.20"), ("smd5", "10.64.0.32")):
        assert ping(lab, name, target), name
        assert mac(lab, name) in lab.endpoints()
