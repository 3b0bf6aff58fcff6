"""A rejected item is reported once: what depends on it is neither accepted nor reported, and
the load still fails as a whole (model/problems.py)."""
from __future__ import annotations

import pytest
import yaml

from tenet.model.errors import IntentError
from tenet.model.load import load_intent, load_tenancy
from tenet.model.parts import split

BASE = """
name: rej
underlay:
  networks:
    pn1: {subnet: 198.18.1.0/24}
    pn2: {subnet: 198.18.2.0/24}
  routers:
    r1: {networks: [pn1, pn2]}
hosts:
  h1: {network: pn1}
  h2: {network: pn2}
networks:
  blue: {vnid: 100, subnet: 10.1.0.0/24}
  red: {vnid: 200, subnet: 10.2.0.0/24}
vms:
  a: {host: h1, network: blue, ip: 10.1.0.5}
  b: {host: h2, network: blue, ip: 10.1.0.6}
  c: {host: h2, nics: [{network: blue, ip: 10.1.0.7}, {network: red, ip: 10.2.0.7}]}
  d: {host: h1, network: red, ip: 10.2.0.8}
aaa:
  users:
    u1: {password: pw, network: blue}
"""


def problems(text: str, **edits) -> list[str]:
    doc = yaml.safe_load(text)
    for path, value in edits.items():
        node = doc
        *parents, last = path.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    with pytest.raises(IntentError) as e:
        load_intent(doc)
    return [str(p) for p in e.value.problems]


def test_the_base_loads():
    assert len(load_intent(yaml.safe_load(BASE)).vms) == 4


def test_a_bad_vnid_is_one_problem_not_one_per_vm_and_user():
    assert problems(BASE, networks__blue={"vnid": 0, "subnet": "10.1.0.0/24"}) == [
        "networks.blue.vnid: VN-ID must be an integer 1..16777215, not 0"]


def test_a_duplicate_vnid_rejects_the_second_vn_only_once():
    assert problems(BASE, networks__red={"vnid": 100, "subnet": "10.2.0.0/24"}) == [
        "networks.red.vnid: VN-ID 100 is already used by blue"]


def test_a_bad_vn_subnet_is_one_problem():
    assert problems(BASE, networks__blue={"vnid": 100, "subnet": "10.1.0.0/33"}) == [
        "networks.blue.subnet: not an IPv4 subnet: '10.1.0.0/33'"]


def test_a_bad_vn_subnet6_is_one_problem():
    got = problems(BASE + "    u2: {password: pw, network: red}\n",
                   networks__red={"vnid": 200, "subnet6": "10.2.0.0/24"})
    assert len(got) == 1 and got[0].startswith("networks.red.subnet6: not an IPv6 prefix")


def test_a_bad_host_is_one_problem():
    assert problems(BASE, hosts__h2={"network": "pn2", "role": "toaster"}) == [
        "hosts.h2.role: must be one of hypervisor, access-switch, router, not 'toaster'"]


def test_a_bad_physical_network_is_one_problem_for_its_hosts_routers_and_vms():
    assert problems(BASE, underlay__networks__pn2={"subnet": "198.18.2.0/40"}) == [
        "underlay.networks.pn2.subnet: not an IPv4 subnet: '198.18.2.0/40'"]


def test_a_genuinely_missing_name_is_still_reported():
    got = problems(BASE, vms__e={"host": "h9", "network": "green"},
                   aaa={"users": {"u1": {"password": "pw", "network": "blue"}, "u2": {"password": "pw", "network": "teal"}}})
    assert got == ["vms.e.host: no host named 'h9'", "vms.e.network: no virtual network named 'green'",
                   "aaa.users.u2.network: no virtual network named 'teal'"]


def test_a_rejected_item_and_a_real_error_on_its_dependent_are_both_reported():
    """Skipping a reference skips only that reference: a dependent's own mistakes still count."""
    got = problems(BASE, networks__blue={"vnid": -1}, vms__a={"host": "h1", "network": "blue", "state": "asleep"})
    assert got == ["networks.blue.vnid: VN-ID must be an integer 1..16777215, not -1",
                   "vms.a.state: must be one of running, paused, stopped, not 'asleep'"]


def test_a_virtual_router_on_a_bad_host_does_not_cascade_to_its_links():
    text = BASE + """
vrouters:
  vr1: {host: h1, nics: [{network: blue, ip: 10.1.0.1}]}
  vr2: {host: h2, nics: [{network: blue, ip: 10.1.0.2}]}
vlinks:
  l12: {between: [vr1, vr2], vnid: 900, subnet: 10.9.0.0/30}
"""
    assert problems(text, hosts__h2={"network": "nowhere"}) == ["hosts.h2.network: no physical network named 'nowhere'"]


def test_the_tenancy_alone_against_a_stored_fabric_reports_a_bad_vn_once():
    fabric_doc, tenancy_doc = split(yaml.safe_load(BASE))
    fabric = load_intent(yaml.safe_load(BASE)).fabric
    tenancy_doc["networks"]["red"] = {"vnid": "two hundred"}
    with pytest.raises(IntentError) as e:
        load_tenancy(tenancy_doc, fabric, "rej")
    assert [str(p) for p in e.value.problems] == ["networks.red.vnid: VN-ID must be an integer 1..16777215, not 'two hundred'"]


def test_a_vn_layered_over_a_rejected_vn_is_not_a_second_problem():
    text = BASE.replace("networks:\n  blue:", "networks:\n  up: {vnid: 300, over: blue, bum: replicate}\n  blue:")
    assert problems(text, networks__blue={"vnid": 0, "subnet": "10.1.0.0/24"}) == [
        "networks.blue.vnid: VN-ID must be an integer 1..16777215, not 0"]
    assert problems(text.replace("over: blue", "over: nothing")) == ["networks.up.over: no VN named 'nothing' to layer over"]
