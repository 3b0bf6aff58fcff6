"""The agent's own rtnetlink readers (agent/kernel/linkdump.py): a link dump datagram and a
link-event datagram. The kernel is trusted more than a tenant, but a reader that dies on an
attribute it did not expect (a longer name, a new kernel's layout) stops the agent: the dump
promises DumpError, the event reader nothing at all."""
from __future__ import annotations

import struct
from functools import cache
from random import Random

from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from fuzzing.mutate import havoc
from fuzzing.run import Target
from tenet.agent.kernel import linkdump
from tenet.agent.kernel.linkdump import DumpError


def _message(index: int, attrs: list, kind: int = linkdump.RTM_NEWLINK, family: int = 0) -> bytes:
    """One link message as pyroute2's encoder (the kernel's layout) writes it."""
    m = ifinfmsg()
    m["index"], m["family"] = index, family
    m["attrs"] = attrs
    m["header"]["type"] = kind
    m["header"]["flags"] = 2  # NLM_F_MULTI, as in a dump
    m.encode()
    return bytes(m.data)


DONE = struct.pack("=IHHII", 20, linkdump.NLMSG_DONE, 2, 1, 0) + bytes(4)


@cache
def _seeds() -> tuple[bytes, ...]:
    vxlan = _message(7, [
        ("IFLA_IFNAME", "tnx1"), ("IFLA_MTU", 1450), ("IFLA_MASTER", 3), ("IFLA_ADDRESS", "02:00:00:00:00:07"),
        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "vxlan"), ("IFLA_INFO_DATA", {"attrs": [
            ("IFLA_VXLAN_ID", 77), ("IFLA_VXLAN_LOCAL", "198.18.0.5"), ("IFLA_VXLAN_GROUP", "239.1.1.1"),
            ("IFLA_VXLAN_PORT", 4790), ("IFLA_VXLAN_TTL", 9), ("IFLA_VXLAN_LINK", 2)]})]})])
    veth = _message(5, [("IFLA_IFNAME", "tnc0"), ("IFLA_LINK", 6), ("IFLA_MTU", 1500),
                        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth")]})])
    lo = _message(1, [("IFLA_IFNAME", "lo"), ("IFLA_MTU", 65536), ("IFLA_ADDRESS", "00:00:00:00:00:00")])
    bridge = _message(3, [("IFLA_IFNAME", "tnb1"), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})])
    port = _message(5, [("IFLA_IFNAME", "tnc0"), ("IFLA_MASTER", 3)], family=7)  # AF_BRIDGE
    gone = _message(5, [("IFLA_IFNAME", "tnc0")], kind=17)
    err = struct.pack("=IHHII", 36, linkdump.NLMSG_ERROR, 0, 1, 0) + struct.pack("=i", -1) + bytes(16)
    return (vxlan + veth + lo + DONE, bridge + vxlan, lo, veth + port + gone, err, DONE)


def _grammar(rng: Random) -> bytes:
    """Messages of arbitrary attributes and layouts, glued like a dump."""
    seeds = _seeds()
    out = b""
    for _ in range(rng.randrange(1, 4)):
        part = rng.choice(seeds)
        out += havoc(rng, part, rng.choice(seeds)) if rng.random() < 0.5 else part
    return out


def _mutate(rng: Random, x: bytes, other: bytes) -> bytes:
    if rng.random() < 0.2:
        return _grammar(rng)
    return havoc(rng, x, other)


def _read(x: bytes) -> str:
    linkdump.link_changes(x)  # promises nothing: a malformed event is skipped
    links, done = linkdump.parse_dump(x)
    return "done" if done else "more"


TARGETS = (Target("linkdump", _seeds(), _mutate, _read, (DumpError,),
                  fresh=lambda rng: rng.randbytes(rng.choice((16, 20, 32, 36, rng.randrange(120))))),)
