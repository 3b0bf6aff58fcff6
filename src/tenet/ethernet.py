"""Raw Ethernet sockets that see only tenet's discovery and session ethertypes.

ETH_P_ALL, so frames are seen before a bridge port's rx handler consumes them; a classic-BPF
program (copied by the kernel when attached) passes only 0x88B5 and 0x88B6, so every other
frame stays in the kernel.
"""
from __future__ import annotations

import ctypes
import socket
import struct

from tenet.wire.discovery import ETHERTYPE_DISCOVERY, ETHERTYPE_SESSION

ETH_P_ALL = 0x0003
SOL_SOCKET = 1
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
# ldh [12]; jeq #0x88b5 -> accept; jeq #0x88b6 -> accept; ret #0; accept: ret #0x40000
BPF = (
    (0x28, 0, 0, 12),
    (0x15, 2, 0, ETHERTYPE_DISCOVERY),
    (0x15, 1, 0, ETHERTYPE_SESSION),
    (0x06, 0, 0, 0),
    (0x06, 0, 0, 0x40000),
)


def packet_socket() -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    prog = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *ins) for ins in BPF))
    sock.setsockopt(SOL_SOCKET, SO_ATTACH_FILTER, struct.pack("HL", len(BPF), ctypes.addressof(prog)))
    return sock
