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

from tenet.wire.arp import ETHERTYPE as ETHERTYPE_ARP
from tenet.wire.eapol import ETHERTYPE as ETHERTYPE_EAPOL
from tenet.wire.discovery import ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION

ETH_P_ALL = 0x0003
SOL_SOCKET = 1
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
SIOCGIFHWADDR = 0x8927


SKF_AD_PKTTYPE = 0xFFFFF000 + 4  # SKF_AD_OFF + 4: the skb's packet type, as an absolute load


def bpf(ethertypes: tuple[int, ...]) -> list[tuple[int, int, int, int]]:
    """ld pkttype; jeq #OUTGOING -> drop; ldh [12]; jeq #type_i -> accept, … ; drop: ret #0;
    accept: ret #0x40000. Our own transmissions never reach userspace: a socket that sends on
    every port would otherwise read each of its frames back."""
    n = len(ethertypes)
    prog = [(0x20, 0, 0, SKF_AD_PKTTYPE), (0x15, n + 1, 0, PACKET_OUTGOING), (0x28, 0, 0, 12)]
    prog += [(0x15, n - i, 0, t) for i, t in enumerate(ethertypes)]
    return prog + [(0x06, 0, 0, 0), (0x06, 0, 0, 0x40000)]


def packet_socket(arp: bool = False, eapol: bool = False, nvo3: bool = True) -> socket.socket:
    types = ((ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION) if nvo3 else ()) + ((ETHERTYPE_ARP,) if arp else ()) \
        + ((ETHERTYPE_EAPOL,) if eapol else ())
    prog_ins = bpf(types)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    prog = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in prog_ins))
    sock.setsockopt(SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(prog_ins), ctypes.addressof(prog)))
    return sock


def hwaddr(ifname: str) -> str:
    """An interface's MAC by ioctl ("" if it is gone): no netlink dump, and right in our own
    namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            raw = fcntl.ioctl(s.fileno(), SIOCGIFHWADDR, struct.pack("256s", ifname.encode()[:15]))
        except OSError:
            return ""
    return ":".join(f"{b:02x}" for b in raw[18:24])
