"""Raw Ethernet sockets that see only tenet's discovery and session ethertypes (and ARP, for
the NVE's responder on IP-based VNs).

ETH_P_ALL, so frames are seen before a bridge port's rx handler consumes them; a classic-BPF
program (copied by the kernel when attached) passes only those ethertypes, so every other
frame stays in the kernel.
"""
from __future__ import annotations

import ctypes
import fcntl
import socket
import struct
import sys

from tenet.wire.arp import ETHERTYPE as ETHERTYPE_ARP
from tenet.wire.eapol import ETHERTYPE as ETHERTYPE_EAPOL
from tenet.wire.discovery import ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION

ETH_P_ALL = 0x0003
SOL_SOCKET = 1
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
SIOCGIFHWADDR = 0x8927
SIOCGIFMTU = 0x8921
SOL_PACKET = 263
PACKET_FANOUT = 18
PACKET_FANOUT_DATA = 22
PACKET_FANOUT_CBPF = 6


SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF + 4: the skb's packet type, as an absolute load


def bpf(ethertypes: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """ld pkttype; jeq #OUTGOING -> drop; ldh [12]; jeq #type_i -> accept, … ; drop: ret #0;
    accept: ret #0x40000. Our own transmissions never reach userspace: a socket that sends on
    every port would otherwise read each of its frames back."""
    n = len(ethertypes)
    prog = [(0x20, 0, 0, SKF_AD_PKTTYPE), (0x15, n + 1, 0, PACKET_OUTGOING), (0x28, 0, 0, 12)]
    prog += [(0x15, n - i, 0, t) for i, t in enumerate(ethertypes)]
    return prog + [(0x06, 0, 0, 0), (0x06, 0, 0, 0x40000)]


def _fprog(prog_ins: list[tuple[int, int, int, int]]) -> tuple[ctypes.Array, bytes]:
    """A struct sock_fprog (and the buffer it points to: keep it alive until setsockopt)."""
    prog = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in prog_ins))
    return prog, struct.pack("HL", len(prog_ins), ctypes.addressof(prog))


def packet_socket(arp: bool = False, eapol: bool = False, nvo3: bool = True) -> socket.socket:
    types = ((ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION) if nvo3 else ()) + ((ETHERTYPE_ARP,) if arp else ()) \
        + ((ETHERTYPE_EAPOL,) if eapol else ())
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    _keep, fprog = _fprog(bpf(types))
    sock.setsockopt(SOL_SOCKET, SO_ATTACH_FILTER, fprog)
    return sock


# ldh [SKF_LL_OFF + 10]: the low 16 bits of the source MAC (a fanout program sees the skb at
# its network header, so the link layer is reached by the negative offset); ret A. The kernel
# takes the result modulo the group's size: a sender's frames always reach one member.
SKF_LL_OFF = -0x200000
FANOUT_BY_SOURCE_MAC = [(0x28, 0, 0, (SKF_LL_OFF + 10) & 0xFFFFFFFF), (0x16, 0, 0, 0)]


def shard_of(mac: str, shards: int) -> int:
    """Which member of a fanout group (in joining order) reads a sender's frames: the kernel's
    FANOUT_BY_SOURCE_MAC, computed in userspace."""
    return int(mac[-5:].replace(":", ""), 16) % shards


def fanout_sockets(count: int, group: int, **kinds: bool) -> list[socket.socket]:
    """`count` packet sockets in one PACKET_FANOUT group split by source MAC: socket k reads
    exactly the frames whose sender has shard_of(mac, count) == k. They join in list order —
    the kernel's member index — so one process must create them all."""
    socks = [packet_socket(**kinds) for _ in range(count)]
    if count == 1:
        return socks
    for s in socks:
        s.setsockopt(SOL_PACKET, PACKET_FANOUT, (group & 0xFFFF) | PACKET_FANOUT_CBPF << 16)
    _keep, fprog = _fprog(FANOUT_BY_SOURCE_MAC)
    socks[0].setsockopt(SOL_PACKET, PACKET_FANOUT_DATA, fprog)  # the group's program: set once, for all
    return socks


def _ifreq(ifname: str, request: int) -> bytes | None:
    """One interface ioctl (None if the interface is gone): no netlink dump to decode, and
    right in our own namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            return fcntl.ioctl(s.fileno(), request, struct.pack("256s", ifname.encode()[:15]))
        except OSError:
            return None


def hwaddr(ifname: str) -> str:
    """An interface's MAC ("" if it is gone)."""
    raw = _ifreq(ifname, SIOCGIFHWADDR)
    return raw[18:24].hex(":") if raw else ""


def mtu(ifname: str) -> int | None:
    """An interface's MTU (None if it is gone)."""
    raw = _ifreq(ifname, SIOCGIFMTU)
    return int.from_bytes(raw[16:20], sys.byteorder) if raw else None
