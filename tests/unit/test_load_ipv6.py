"""IPv6 inside VNs: `ip6` and `subnet6` are validated by path, round-trip, and the lab plan
gives dual-stack VMs (only them) IPv6, their addresses without DAD."""
from __future__ import annotations

from ipaddress import IPv6Interface, IPv6Network

import pytest
import yaml

from tenet.lab.plan import plan
from tenet.model.errors import IntentError
from tenet.model.load import intent_to_doc, load_intent

DOC = """
name: six
underlay:
  networks:
    pn1: {subnet: 198.18.1.0/24}
hosts:
  h1: {network: pn1}
  h2: {network: pn1}
networks:
  red: {vnid: 10, subnet: 10.1.0.0/24, subnet6: "fd00:1::/64"}
  blue: {vnid: 11, bum: replicate}
  routed: {vnid: 12, subnet: 10.3.0.0/24, forwarding: ip}
vms:
  A: {host: h1, network: red, ip: 10.1.0.1, ip6: "fd00:1::1"}
  B: {host: h2, nics: [{network: red, ip6: ["fd00:1::2/64", "fd00:1::22"]}, {network: blue, ip6: "2001:db8::2/64"}]}
  C: {host: h2, network: blue, ip6: "2001:db8::3/64"}
  D: {host: h1, network: routed, ip: 10.3.0.5}
vrouters:
  V: {host: h1, nics: [{network: blue, ip6: "2001:db8::1/64"}]}
"""


def doc(edit=None):
    d = yaml.safe_load(DOC)
    if edit:
        edit(d)
    return d


def problems(d) -> list[str]:
    with pytest.raises(IntentError) as e:
        load_intent(d)
    return [str(p) for p in e.value.problems]


def nic(intent, vm, i=0):
    return next(v for v in intent.vms if v.name == vm).nics[i]


def test_ip6_one_or_a_list_prefix_from_subnet6_and_round_trip():
    i = load_intent(doc())
    assert i.vn("red").subnet6 == IPv6Network("fd00:1::/64") and i.vn("blue").subnet6 is None
    assert nic(i, "A").ip6 == (IPv6Interface("fd00:1::1/64"),)
    assert nic(i, "B").ip6 == (IPv6Interface("fd00:1::2/64"), IPv6Interface("fd00:1::22/64"))
    assert nic(i, "B", 1).ip6 == (IPv6Interface("2001:db8::2/64"),) and nic(i, "B", 1).ip is None
    assert nic(i, "D").ip6 == ()
    assert load_intent(intent_to_doc(i)) == i


def test_two_vns_may_reuse_ipv6_addresses():
    def twin(d):
        d["vms"]["E"] = {"host": "h1", "network": "blue", "ip6": "fd00:1::1/64"}  # A's address, in blue
    assert nic(load_intent(doc(twin)), "E").ip6 == (IPv6Interface("fd00:1::1/64"),)


def _set(path, value):
    def edit(d):
        node = d
        *parts, last = path
        for p in parts:
            node = node[p]
        node[last] = value
    return edit


@pytest.mark.parametrize("edit,expected", [
    (_set(("vms", "A", "ip6"), "fd00:1::zz"), "vms.A.ip6: not an IPv6 address: 'fd00:1::zz'"),
    (_set(("vms", "A", "ip6"), "10.1.0.9/24"), "vms.A.ip6: '10.1.0.9/24' is IPv4: put it in ip, IPv6 addresses in ip6"),
    (_set(("vms", "A", "ip6"), "fd00:2::1"), "vms.A.ip6: fd00:2::1/64 is not in VN red's subnet6 fd00:1::/64"),
    (_set(("vms", "A", "ip6"), "fd00:1::1/80"), "vms.A.ip6: fd00:1::1/80 has prefix length 80, but VN red's subnet6 is fd00:1::/64"),
    (_set(("vms", "C", "ip6"), "2001:db8::3"), "vms.C.ip6: 2001:db8::3 needs a prefix length (VN blue has no subnet6)"),
    (_set(("vms", "C", "ip6"), "2001:db8::2/64"), "vms.C.ip6: 2001:db8::2 is already used in blue by vms.B.nics[1]"),
    (_set(("vms", "C", "ip6"), "2001:db8::1/64"), "vrouters.V.nics[0].ip6: 2001:db8::1 is already used in blue by vms.C"),
    (_set(("vms", "A", "ip6"), ["fd00:1::1", "fd00:1::1"]), "vms.A.ip6[1]: fd00:1::1 is listed twice"),
    (_set(("vms", "A", "ip6"), ["fd00:1::1", "fe80::1/64"]), "vms.A.ip6[1]: fe80::1 is link-local (the kernel makes its own)"),
    (_set(("vms", "A", "ip6"), "ff02::1/64"), "vms.A.ip6: ff02::1 is multicast"),
    (_set(("vms", "A", "ip6"), "::/64"), "vms.A.ip6: :: is the unspecified address"),
    (_set(("vms", "A", "ip6"), "::ffff:10.1.0.1/120"), "vms.A.ip6: ::ffff:a01:1 is IPv4-mapped"),
    (_set(("vms", "A", "ip6"), "fd00:1::"), "vms.A.ip6: fd00:1:: is the Subnet-Router anycast address of fd00:1::/64"),
    (_set(("vms", "A", "ip6"), []), "vms.A.ip6: an empty list: leave ip6 out instead"),
    (_set(("vms", "A", "ip6"), 3723), "vms.A.ip6: YAML read this as the number 3723: quote the address"),
    (_set(("vms", "D", "ip6"), "fd00:3::5/64"), "vms.D.ip6: VN routed is routed (forwarding: ip), which is IPv4-only"),
    (_set(("networks", "routed", "subnet6"), "fd00:3::/64"),
     "networks.routed.subnet6: a routed VN (forwarding: ip) is IPv4-only; IPv6 needs forwarding: mac"),
    (_set(("networks", "red", "subnet6"), "fd00:1::1/64"), "networks.red.subnet6: not an IPv6 prefix: 'fd00:1::1/64' (fd00:1::1/64 has host bits set)"),
    (_set(("networks", "red", "subnet6"), "10.9.0.0/24"), "networks.red.subnet6: not an IPv6 prefix: '10.9.0.0/24' (use subnet for IPv4)"),
    (_set(("networks", "red", "subnet6"), "fe80::/64"), "networks.red.subnet6: fe80::/64 is link-local (the kernel makes its own)"),
])
def test_bad_ipv6_is_refused_naming_the_path(edit, expected):
    assert expected in problems(doc(edit))


def test_yaml_sexagesimal_trap_is_caught_from_text():
    """An unquoted 1:2:3:4:5:6:7:8 is an integer to YAML 1.1: the message says to quote it."""
    d = yaml.safe_load(DOC.replace('ip6: "fd00:1::1"', "ip6: 1:2:3:4:5:6:7:8"))
    assert any("YAML read this as the number" in p for p in problems(d))


def test_a_server_takes_no_ip6():
    def server(d):
        d["servers"] = {"s1": {"uplink": "pn1", "network": "blue", "identity": "u", "password": "p", "ip6": "2001:db8::9/64"}}
    assert any(p.startswith("servers.s1.ip6: unknown key") for p in problems(doc(server)))


def _commands(ns_suffix):
    p = plan(load_intent(doc()))
    return [" ".join(c.argv) for c in p.commands if c.netns == f"tn-six-{ns_suffix}"]


def test_plan_turns_ipv6_on_only_in_dual_stack_vms_and_routers_without_dad():
    a, d, h1, v = _commands("A"), _commands("D"), _commands("h1"), _commands("V")
    for cmds in (a, v):  # a VM and a virtual router with IPv6 addresses
        assert "sysctl -qw net.ipv6.conf.all.disable_ipv6=0" in cmds
        assert "sysctl -qw net.ipv6.conf.default.accept_dad=0" in cmds
        # the NIC existed before `quiet`: its own accept_dad goes off before it comes up
        assert cmds.index("sysctl -qw net.ipv6.conf.eth0.accept_dad=0") < cmds.index("ip link set eth0 up")
    assert "ip -6 addr add fd00:1::1/64 dev eth0 nodad" in a and "ip addr add 10.1.0.1/24 dev eth0" in a
    assert "ip -6 addr add 2001:db8::1/64 dev eth0 nodad" in v
    for cmds in (d, h1):  # an IPv4-only VM and a host keep IPv6 off
        assert "sysctl -qw net.ipv6.conf.all.disable_ipv6=1" in cmds
        assert not any("disable_ipv6=0" in c or "accept_dad" in c or " -6 " in c for c in cmds)
    b = _commands("B")
    assert [c for c in b if c.startswith("ip -6 addr")] == [
        "ip -6 addr add fd00:1::2/64 dev eth0 nodad", "ip -6 addr add fd00:1::22/64 dev eth0 nodad",
        "ip -6 addr add 2001:db8::2/64 dev eth1 nodad"]


def test_a_copied_vr_takes_the_lowest_free_ipv6_addresses_and_the_cli_reads_them():
    from tenet.cli.vms import nic_option as _nic_option
    from tenet.hypervisor.addresses import free_ip6 as _free6
    i = load_intent(doc())
    assert _free6(i, "blue", IPv6Interface("2001:db8::1/64")) == IPv6Interface("2001:db8::4/64")  # ::1..::3 taken
    assert _free6(i, "red", IPv6Interface("fd00:1::1/64")) == IPv6Interface("fd00:1::3/64")
    assert _nic_option("blue=10.0.0.5/24,fd00::5/64,fd01::5/64") == {
        "network": "blue", "ip": "10.0.0.5/24", "ip6": ["fd00::5/64", "fd01::5/64"]}
    assert _nic_option("blue") == {"network": "blue"}


def test_an_ipv6_only_mab_nic_is_refused():
    """MAB starts on a MAC's first ARP (agent/discovery.py): without IPv4 it would never start."""
    def mab(d, ip=None):
        d["switches"] = {"tor1": {"network": "pn1", "mab": True}}
        d["hosts"]["h6"] = {"switch": "tor1"}
        d["vms"]["M"] = {"host": "h6", "network": "blue", "join": "mab", "ip6": "2001:db8::9/64", **({"ip": ip} if ip else {})}
    assert "vms.M.ip6: join: mab starts on the MAC's first ARP: an IPv6-only NIC would never be tried (give it ip " \
           "too)" in problems(doc(mab))
    assert nic(load_intent(doc(lambda d: mab(d, "10.2.0.9/24"))), "M").ip6 == (IPv6Interface("2001:db8::9/64"),)
