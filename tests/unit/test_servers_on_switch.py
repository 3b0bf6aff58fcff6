"""Servers on an access switch's port: loaded and checked, wired by the lab's plan, and given a
wpa_supplicant configuration for their method."""
from __future__ import annotations

from dataclasses import replace
from ipaddress import IPv4Interface

import pytest
import yaml

from tenet.lab import supplicant
from tenet.lab.plan import SERVER_NIC, plan
from tenet.model.errors import IntentError
from tenet.model.load import intent_to_doc, load_intent
from tenet.model.tenancy import EapMethod, Join, switch_port_name

TOPOLOGY = """
name: srv
underlay:
  networks:
    pn1: {subnet: 198.18.1.0/24}
switches:
  tor1: {network: pn1}
hosts:
  h1: {network: pn1}
  host6: {switch: tor1}
networks:
  n1: {vnid: 5001, subnet: 10.1.0.0/24}
  n2: {vnid: 5002, subnet: 10.1.0.0/24}
aaa:
  users:
    alice: {password: pw, network: n1, method: peap}
    bob: {password: pw, network: n2, method: tls}
vms:
  H: {host: h1, network: n1, ip: 10.1.0.8/24}
servers:
  s1: {switch: tor1, network: n1, ip: 10.1.0.30/24, method: peap, identity: alice, password: pw}
  s2: {switch: tor1, join: 8021x, network: n2, ip: 10.1.0.30/24, method: tls, identity: bob}
  s3: {uplink: pn1, network: n1, ip: 10.1.0.31/24, identity: alice, password: pw}
"""


def doc() -> dict:
    return yaml.safe_load(TOPOLOGY)


def problems(d) -> list[str]:
    with pytest.raises(IntentError) as e:
        load_intent(d)
    return [str(p) for p in e.value.problems]


def test_a_server_on_a_switch_port_has_no_underlay_address_and_round_trips():
    i = load_intent(doc())
    s1, s2, s3 = i.servers
    assert (s1.switch, s1.uplink, s1.address, s1.on_switch) == ("tor1", "", None, True)
    assert (s1.nic.join, s1.nic.method, s1.nic.identity) == (Join.DOT1X, EapMethod.PEAP, "alice")
    assert (s2.nic.method, s2.nic.password) == (EapMethod.TLS, "")
    assert str(s2.nic.ip) == "10.1.0.30/24"  # the same address in another VN: tenants may reuse
    assert s3.address == IPv4Interface("198.18.1.12/24") and not s3.on_switch  # after h1, tor1; uplink kept
    assert load_intent(intent_to_doc(i)) == i


@pytest.mark.parametrize("patch, expected", [
    ({"switch": "tor9"}, "servers.s1.switch: no switch named 'tor9'"),
    ({"switch": "h1"}, "servers.s1.switch: no switch named 'h1'"),  # a hypervisor has no switch ports
    ({"join": "discover"}, "servers.s1.join: a server on a switch port authenticates itself by 802.1X"),
    ({"join": "mab"}, "servers.s1.join: a server on a switch port authenticates itself by 802.1X"),
    ({"uplink": "pn1"}, "servers.s1: a server on a switch port has no uplink"),
    ({"address": "198.18.1.50"}, "servers.s1: a server on a switch port has no address"),
    ({"nves": ["h1"]}, "servers.s1: a server on a switch port has no nves"),
    ({"method": "leap"}, "servers.s1.method: must be one of md5, tls, peap, ttls"),
    ({"password": None}, "servers.s1: join: 8021x needs identity and password"),
    ({"identity": None}, "servers.s1: join: 8021x needs identity and password"),
    ({"network": "n2"}, "servers.s1.network: RADIUS puts alice into n1, not n2"),
    ({"method": "ttls"}, "servers.s1.method: aaa.users.alice authenticates by peap, not ttls"),
    ({"method": "tls", "password": None, "identity": "carol"}, "servers.s1.identity: EAP-TLS needs a client certificate"),
    ({"method": "tls"}, "servers.s1.password: EAP-TLS authenticates with the client certificate: no password"),
    ({"ip": "10.1.0.8/24"}, "servers.s1: its MAC or IP is already used in n1"),  # H's address
    ({"colour": "red"}, "servers.s1.colour: unknown key"),
])
def test_server_on_a_switch_rules_name_their_path(patch, expected):
    d = doc()
    spec = {**d["servers"]["s1"], **patch}
    d["servers"]["s1"] = {k: v for k, v in spec.items() if v is not None}
    assert any(p.startswith(expected) for p in problems(d)), problems(d)


def test_an_identity_radius_does_not_know_may_speak_any_password_method():
    """Only TLS needs the lab's certificate; a PEAP identity unknown here is RADIUS's business."""
    d = doc()
    d["servers"]["s1"]["identity"] = "stranger"
    assert load_intent(d).servers[0].nic.identity == "stranger"


def test_a_server_behind_an_l3_hop_still_discovers():
    d = doc()
    d["servers"]["s3"]["join"] = "8021x"
    assert any(p.startswith("servers.s3.join: a server behind an L3 hop attaches by NVO3") for p in problems(d))


def test_the_plan_cables_its_nic_to_the_switch_port_and_addresses_it_in_its_vn():
    i = load_intent(doc())
    p = plan(i)
    port = switch_port_name("s1")
    veth = next(v for v in p.veths if v.a_ns == "tn-srv-s1")
    assert (veth.a, veth.b_ns, veth.b, veth.a_mac) == (SERVER_NIC, "tn-srv-tor1", port, i.servers[0].nic.mac)
    argvs = [(c.netns, c.argv) for c in p.commands]
    assert ("tn-srv-s1", ("ip", "addr", "add", "10.1.0.30/24", "dev", SERVER_NIC)) in argvs
    assert ("tn-srv-tor1", ("ip", "link", "set", port, "up")) in argvs
    assert not any(ns == "tn-srv-s1" and "up0" in argv for ns, argv in argvs)  # no underlay
    assert any(v.a_ns == "tn-srv-s3" and v.a == "up0" for v in p.veths)  # the L3 one keeps its uplink


CREDS = supplicant.Credentials("/lab/eap/ca.pem", "/lab/eap/bob.pem", "/lab/eap/bob.key")


def test_supplicant_config_for_each_method():
    i = load_intent(doc())
    s1, s2, _ = i.servers
    peap = supplicant.render(supplicant.config_for(s1, "/lab/wpa/s1", CREDS))
    assert peap.splitlines()[:3] == ["ctrl_interface=/lab/wpa/s1", "eapol_version=2", "ap_scan=0"]
    for line in ('key_mgmt=IEEE8021X', 'eap=PEAP', 'identity="alice"', 'anonymous_identity="anonymous"',
                 'password="pw"', 'ca_cert="/lab/eap/ca.pem"', 'phase2="auth=MSCHAPV2"', 'eapol_flags=0'):
        assert "\t" + line in peap.splitlines(), (line, peap)
    assert "client_cert" not in peap
    tls = supplicant.render(supplicant.config_for(s2, "/lab/wpa/s2", CREDS))
    for line in ('eap=TLS', 'identity="bob"', 'client_cert="/lab/eap/bob.pem"', 'private_key="/lab/eap/bob.key"'):
        assert "\t" + line in tls.splitlines(), (line, tls)
    assert "password" not in tls and "anonymous" not in tls and "phase2" not in tls
    ttls = supplicant.render(supplicant.config_for(replace(s1, nic=replace(s1.nic, method=EapMethod.TTLS)), "/d", CREDS))
    assert '\tphase2="auth=PAP"' in ttls and "\teap=TTLS" in ttls
    md5 = supplicant.render(supplicant.config_for(replace(s1, nic=replace(s1.nic, method=EapMethod.MD5)), "/d", CREDS))
    assert "\teap=MD5" in md5 and "ca_cert" not in md5 and "anonymous" not in md5


def test_strings_wpa_supplicant_cannot_quote_go_in_hex():
    c = supplicant.SupplicantConfig("/d", EapMethod.MD5, identity='a"b', password="pä")
    lines = supplicant.render(c).splitlines()
    assert "\tidentity=" + 'a"b'.encode().hex() in lines and "\tpassword=" + "pä".encode().hex() in lines
