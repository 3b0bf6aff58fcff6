"""EAP methods in the topology and in the lab's FreeRADIUS config: one method per user, the
TLS-based ones only with certificates, several servers primary first."""
from __future__ import annotations

import pytest
import yaml

from tenet.aaa.config import render
from tenet.model.errors import IntentError
from tenet.model.load import intent_to_doc, load_intent
from tenet.model.tenancy import AaaServer, EapMethod

TOPOLOGY = """
name: eapcfg
underlay:
  networks:
    pn1: {subnet: 198.18.1.0/24}
    pn2: {subnet: 198.18.2.0/24}
  routers:
    r1: {networks: [pn1, pn2]}
hosts:
  host1: {network: pn1}
networks:
  n1: {vnid: 5001, subnet: 10.1.0.0/24}
aaa:
  users:
    md: {password: pw, network: n1}
    tl: {method: tls, network: n1}
    pe: {method: peap, password: pp, network: n1}
    tt: {method: ttls, password: tp, network: n1}
vms:
  T: {host: host1, nics: [{network: n1, join: discover, identity: tl, method: tls}]}
"""


def problems(d: dict) -> list[str]:
    with pytest.raises(IntentError) as e:
        load_intent(d)
    return [f"{p.path}: {p.message}" for p in e.value.problems]


def test_methods_load_default_md5_and_round_trip():
    i = load_intent(yaml.safe_load(TOPOLOGY))
    assert {u.name: u.method for u in i.aaa} == {"md": EapMethod.MD5, "tl": EapMethod.TLS, "pe": EapMethod.PEAP,
                                                  "tt": EapMethod.TTLS}
    assert i.vms[0].nics[0].method is EapMethod.TLS and i.vms[0].nics[0].password == ""
    assert i.aaa_servers == (AaaServer("aaa", "pn1"),)  # none named: one, as before failover
    assert load_intent(intent_to_doc(i)) == i


def test_servers_keep_their_order_and_networks():
    d = yaml.safe_load(TOPOLOGY)
    d["aaa"]["servers"] = {"rz": {"network": "pn2"}, "ra": {}}
    i = load_intent(d)
    assert i.aaa_servers == (AaaServer("rz", "pn2"), AaaServer("ra", "pn1"))
    assert load_intent(intent_to_doc(i)) == i


@pytest.mark.parametrize("patch, expected", [
    (lambda d: d["aaa"]["users"]["md"].update(method="md4"), "aaa.users.md.method: must be one of md5, tls, peap, ttls"),
    (lambda d: d["aaa"]["users"]["pe"].pop("password"), "aaa.users.pe.password: required (method peap"),
    (lambda d: d["vms"]["T"]["nics"][0].update(method="peap"), "vms.T.nics[0]: join: discover needs identity and password"),
    (lambda d: d["vms"]["T"]["nics"][0].update(join="static", identity=None), "vms.T.nics[0].method: only a NIC that authenticates"),
    (lambda d: d["aaa"].update(servers={"r1": {"network": "pn9"}}), "aaa.servers.r1.network"),
    (lambda d: d["aaa"].update(servers={"host1": {}}), "host1: name used by both a RADIUS server and a host"),
])
def test_bad_methods_and_servers_name_their_path(patch, expected):
    d = yaml.safe_load(TOPOLOGY)
    patch(d)
    for nic in d["vms"]["T"]["nics"]:
        if nic.get("identity") is None:
            nic.pop("identity", None)
    assert any(p.startswith(expected) for p in problems(d)), problems(d)


def test_each_user_is_held_to_its_method():
    files = render(load_intent(yaml.safe_load(TOPOLOGY)).aaa, "s3", "198.18.1.254", 1812, ["198.18.0.0/15"], "/run/x",
                   "/run/x/eap")
    users = files["users"]
    assert '"md" Cleartext-Password := "pw", EAP-Type := 4' in users
    assert '"tl" EAP-Type := 13' in users  # no password: a certificate or nothing
    assert '"pe" Cleartext-Password := "pp", EAP-Type := 25' in users
    assert '"tt" Cleartext-Password := "tp", EAP-Type := 21' in users
    inner = files["inner-users"]  # only who authenticates inside a tunnel, with no outer method
    assert '"pe" Cleartext-Password := "pp"\n' in inner and '"tt"' in inner
    assert '"md"' not in inner and '"tl"' not in inner and "EAP-Type" not in inner
    conf = files["radiusd.conf"]
    assert "check_cert_cn = %{User-Name}" in conf and "server inner-tunnel" in conf
    assert "port = 1813" in conf and "filename = /run/x/detail" in conf


def test_without_certificates_only_md5():
    files = render(load_intent(yaml.safe_load(TOPOLOGY)).aaa, "s3", "198.18.1.254", 1812, ["198.18.0.0/15"], "/run/x")
    assert "tls-config" not in files["radiusd.conf"] and "inner-tunnel" not in files["radiusd.conf"]


def test_a_host_vouches_for_its_vms_with_a_password_method_only():
    from pathlib import Path
    d = yaml.safe_load((Path(__file__).parents[1] / "lab" / "dot1x.yaml").read_text())
    d["vms"]["V"]["nics"][0]["method"] = "peap"
    d["aaa"]["users"]["vm-v"]["method"] = "peap"
    assert load_intent(d).vms  # PEAP (or TTLS) with the VM's password: the host can
    d["vms"]["V"]["nics"][0]["method"] = "tls"
    assert any(p.startswith("vms.V.nics[0].method: the host vouches for its VMs with a password")
               for p in problems(d)), problems(d)
