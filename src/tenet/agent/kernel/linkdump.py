"""A link dump read straight off rtnetlink, keeping only the attributes the agent compares.

pyroute2 decodes every attribute of every link into objects. A pass re-reads the links
whenever a port joins or leaves a bridge, which under TES churn is most passes, and that
decoding was three fifths of the agent's CPU. Here a dump is one request and a walk over
the attribute headers.
"""
from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
IFINFO = struct.Struct("=BxHiII")  # family, device type, index, flags, change mask
RTA = struct.Struct("=HH")  # length, type
NLMSG_ERROR, NLMSG_DONE, RTM_NEWLINK, RTM_GETLINK = 2, 3, 16, 18
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_LINK, IFLA_MASTER, IFLA_LINKINFO = 1, 3, 4, 5, 10, 18
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
NLA_TYPE_MASK = 0x3FFF  # the nested and byte-order flags are not part of the type
IFLA_VXLAN_ID, IFLA_VXLAN_GROUP, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL, IFLA_VXLAN_TTL, IFLA_VXLAN_PORT = 1, 2, 3, 4, 5, 15


@dataclass(frozen=True)
class VxlanInfo:
    vni: int
    group: str  # "" when unset
    local: str
    link: int  # ifindex of the device it sends through, 0 if none
    ttl: int
    port: int


@dataclass(frozen=True)
class LinkInfo:
    index: int
    name: str
    kind: str  # IFLA_INFO_KIND: "bridge", "vxlan", "veth", ... ("" for a physical or loopback)
    master: int  # ifindex, 0 if none
    link: int  # a veth's peer ifindex (IFLA_LINK), 0 if none
    mtu: int
    address: str  # MAC, "" if none
    vxlan: VxlanInfo | None = None


class DumpError(OSError):
    """The kernel answered the dump with an error."""


def attributes(data: bytes, off: int, end: int) -> dict[int, bytes]:
    """The attributes between `off` and `end` by type (the first of each type)."""
    out: dict[int, bytes] = {}
    end = min(end, len(data))
    while off + RTA.size <= end:
        length, kind = RTA.unpack_from(data, off)
        if length < RTA.size:
            break  # malformed: stop rather than loop
        out.setdefault(kind & NLA_TYPE_MASK, data[off + RTA.size:min(off + length, end)])
        off += (length + 3) & ~3
    return out


def _u32(raw: bytes | None) -> int:
    return int.from_bytes(raw[:4], "little") if raw and len(raw) >= 4 else 0


def _ip4(raw: bytes | None) -> str:
    return socket.inet_ntoa(raw) if raw and len(raw) == 4 and raw != bytes(4) else ""


def _mac(raw: bytes | None) -> str:
    return raw.hex(":") if raw else ""


def _vxlan(data: bytes) -> VxlanInfo:
    a = attributes(data, 0, len(data))
    port = a.get(IFLA_VXLAN_PORT)
    return VxlanInfo(
        vni=_u32(a.get(IFLA_VXLAN_ID)),
        group=_ip4(a.get(IFLA_VXLAN_GROUP)),
        local=_ip4(a.get(IFLA_VXLAN_LOCAL)),
        link=_u32(a.get(IFLA_VXLAN_LINK)),
        ttl=a[IFLA_VXLAN_TTL][0] if a.get(IFLA_VXLAN_TTL) else 0,
        port=int.from_bytes(port, "big") if port else 4789,  # network byte order on the wire
    )


def _text(raw: bytes) -> str:
    """A name as the kernel stores it: bytes, not necessarily UTF-8 (`ip link add` takes any
    but '/', ':' and spaces); one that is not reads with U+FFFD and never matches ours."""
    return raw.rstrip(b"\0").decode(errors="replace")


def parse_link(data: bytes, off: int, end: int) -> LinkInfo:
    """One RTM_NEWLINK message body (after the netlink header); DumpError if it is cut short."""
    end = min(end, len(data))
    if off + IFINFO.size > end:
        raise DumpError(f"link dump: a link message of {end - off} bytes is shorter than ifinfomsg")
    _, _, index, _, _ = IFINFO.unpack_from(data, off)
    a = attributes(data, off + IFINFO.size, end)
    kind, vx = "", None
    if IFLA_LINKINFO in a:
        info = attributes(a[IFLA_LINKINFO], 0, len(a[IFLA_LINKINFO]))
        kind = _text(info.get(IFLA_INFO_KIND, b""))
        if kind == "vxlan" and IFLA_INFO_DATA in info:
            vx = _vxlan(info[IFLA_INFO_DATA])
    return LinkInfo(index, _text(a.get(IFLA_IFNAME, b"")), kind, _u32(a.get(IFLA_MASTER)),
                    _u32(a.get(IFLA_LINK)), _u32(a.get(IFLA_MTU)), _mac(a.get(IFLA_ADDRESS)), vx)


def dump() -> list[LinkInfo]:
    """Every link of this process's network namespace."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        body = IFINFO.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        s.send(NLMSG.pack(NLMSG.size + len(body), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + body)
        out: list[LinkInfo] = []
        while True:
            links, done = parse_dump(s.recv(1 << 17))
            out += links
            if done:
                return out


def _strerror(code: int) -> str:
    try:
        return os.strerror(code)
    except (ValueError, OverflowError):
        return f"error {code}"


def parse_dump(data: bytes) -> tuple[list[LinkInfo], bool]:
    """One datagram of a link dump: its links, and whether it ends the dump. Apart from the
    socket so that it can be fuzzed; anything malformed is a DumpError."""
    out: list[LinkInfo] = []
    off = 0
    while off + NLMSG.size <= len(data):
        length, kind, _, _, _ = NLMSG.unpack_from(data, off)
        if length < NLMSG.size or off + length > len(data):
            raise DumpError(f"link dump: malformed netlink message at offset {off} (length {length} of {len(data) - off})")
        if kind == NLMSG_DONE:
            return out, True
        if kind == NLMSG_ERROR:
            if length < NLMSG.size + 4:
                raise DumpError(f"link dump: an error message at offset {off} without its code")
            code = -struct.unpack_from("=i", data, off + NLMSG.size)[0]
            raise DumpError(code, f"link dump: {_strerror(code)}")
        if kind == RTM_NEWLINK:
            out.append(parse_link(data, off + NLMSG.size, off + length))
        off += (length + 3) & ~3
    return out, False


RTM_DELLINK = 17
RTMGRP_LINK = 1


def link_events() -> socket.socket:
    """A socket the kernel tells of every link that appears, changes or goes in this
    namespace (a VM's port plugged, or handed in or out by a migration)."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK, socket.NETLINK_ROUTE)
    s.bind((0, RTMGRP_LINK))
    return s


def link_changes(data: bytes) -> list[tuple[str, bool]]:
    """(name, present) for each link message in one datagram from `link_events`.

    A port joining or leaving a bridge is told as RTM_NEWLINK/RTM_DELLINK of family
    AF_BRIDGE: the link itself stays. Those are skipped, or a TES's port taken off the
    bridge by a detach would read as the port gone (and end the TES's next session)."""
    out, off = [], 0
    while off + NLMSG.size <= len(data):
        length, kind, _, _, _ = NLMSG.unpack_from(data, off)
        if length < NLMSG.size or off + length > len(data):
            break  # malformed or cut short: nothing more to read in this datagram
        if (kind in (RTM_NEWLINK, RTM_DELLINK) and length >= NLMSG.size + IFINFO.size
                and IFINFO.unpack_from(data, off + NLMSG.size)[0] != socket.AF_BRIDGE):
            a = attributes(data, off + NLMSG.size + IFINFO.size, off + length)
            name = _text(a.get(IFLA_IFNAME, b""))
            if name:
                out.append((name, kind == RTM_NEWLINK))
        off += (length + 3) & ~3
    return out
