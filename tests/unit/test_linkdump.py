"""The agent's own link-dump parser reads what pyroute2's encoder writes, attribute for attribute."""
import socket

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from tenet.agent.kernel import linkdump
from tenet.agent.kernel.linkdump import LinkInfo, VxlanInfo


def encoded(index: int, attrs: list) -> bytes:
    m = ifinfmsg()
    m["index"] = index
    m["attrs"] = attrs
    m["header"]["type"] = linkdump.RTM_NEWLINK
    m.encode()
    return bytes(m.data)


def parse(data: bytes) -> LinkInfo:
    return linkdump.parse_link(data, linkdump.NLMSG.size, len(data))


def test_a_vxlan_device_as_pyroute2_encodes_it():
    data = encoded(7, [
        ("IFLA_IFNAME", "tnx1"), ("IFLA_MTU", 1450), ("IFLA_MASTER", 3), ("IFLA_ADDRESS", "02:00:00:00:00:07"),
        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "vxlan"), ("IFLA_INFO_DATA", {"attrs": [
            ("IFLA_VXLAN_ID", 77), ("IFLA_VXLAN_LOCAL", "198.18.0.5"), ("IFLA_VXLAN_GROUP", "239.1.1.1"),
            ("IFLA_VXLAN_PORT", 4790), ("IFLA_VXLAN_TTL", 9), ("IFLA_VXLAN_LINK", 2)]})]})])
    assert parse(data) == LinkInfo(7, "tnx1", "vxlan", 3, 0, 1450, "02:00:00:00:00:07",
                                   VxlanInfo(vni=77, group="239.1.1.1", local="198.18.0.5", link=2, ttl=9, port=4790))


def test_a_veth_names_its_peer_and_unset_fields_are_empty():
    data = encoded(5, [("IFLA_IFNAME", "tnc0"), ("IFLA_LINK", 6), ("IFLA_MTU", 1500),
                       ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth")]})])
    assert parse(data) == LinkInfo(5, "tnc0", "veth", 0, 6, 1500, "")


def test_a_truncated_attribute_ends_the_walk_instead_of_looping():
    data = encoded(1, [("IFLA_IFNAME", "lo"), ("IFLA_MTU", 65536)])
    broken = data[:-8] + b"\x02\x00\x04\x00" + data[-4:]  # the MTU attribute claims 2 bytes (< its header)
    assert parse(broken).name == "lo" and parse(broken).mtu == 0


def test_the_dump_of_this_namespace_matches_if_nameindex():
    assert {(l.index, l.name) for l in linkdump.dump()} == set(socket.if_nameindex())


def event(kind: int, family: int, name: str) -> bytes:
    m = ifinfmsg()
    m["family"] = family
    m["index"] = 9
    m["attrs"] = [("IFLA_IFNAME", name)]
    m["header"]["type"] = kind
    m.encode()
    return bytes(m.data)


def test_a_port_leaving_its_bridge_is_not_the_port_leaving():
    """The kernel tells of bridge membership as AF_BRIDGE link messages; only AF_UNSPEC ones
    say a link came or went (a detach unbridges a TES's port, which stays)."""
    data = (event(linkdump.RTM_DELLINK, socket.AF_BRIDGE, "tp1") + event(linkdump.RTM_NEWLINK, socket.AF_BRIDGE, "tp2")
            + event(linkdump.RTM_DELLINK, socket.AF_UNSPEC, "tp3") + event(linkdump.RTM_NEWLINK, socket.AF_UNSPEC, "tp4"))
    assert linkdump.link_changes(data) == [("tp3", False), ("tp4", True)]


def test_malformed_dumps_are_dump_errors_and_odd_names_still_read():
    """bench/fuzz.py found these escaping as struct.error, UnicodeDecodeError and OverflowError:
    a message cut short, an error message without its code or with a code out of range, and an
    interface name that is not UTF-8 (the kernel allows any bytes but '/', ':' and spaces)."""
    import struct

    import pytest

    data = encoded(4, [("IFLA_IFNAME", "tnc4")])
    for broken in (data[:-6], data[:20] + data[20:24], struct.pack("=IHHII", 18, linkdump.NLMSG_ERROR, 0, 1, 0) + b"xx",
                   struct.pack("=IHHIIi", 20, linkdump.NLMSG_ERROR, 0, 1, 0, -2**31)):
        with pytest.raises(linkdump.DumpError):
            linkdump.parse_dump(broken)
    odd = data.replace(b"tnc4", b"tn\xff4")
    assert linkdump.parse_dump(odd)[0][0].name == "tn\ufffd4"
    assert linkdump.link_changes(odd) == [("tn\ufffd4", True)] and linkdump.link_changes(data[:-6]) == []
