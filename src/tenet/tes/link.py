"""The TES's Ethernet link: an AF_PACKET socket on one interface, tenet ethertypes only."""
from __future__ import annotations

import select
import socket
from pathlib import Path

from tenet.ethernet import PACKET_OUTGOING, packet_socket
from tenet.wire.discovery import DecodeError, Message, frame, unframe



class PacketLink:
    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self.mac = Path(f"/sys/class/net/{ifname}/address").read_text().strip()
        self.sock = packet_socket()
        self.sock.bind((ifname, 0))

    def send(self, dst: str, msg: Message) -> None:
        self.sock.sendto(frame(dst, self.mac, msg), (self.ifname, 0))

    def recv(self, timeout: float) -> tuple[str, Message] | None:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return None
        data, addr = self.sock.recvfrom(65535)
        if addr[2] == PACKET_OUTGOING:
            return None
        try:
            dst, src, _, msg = unframe(data)
        except DecodeError:
            return None
        if dst not in (self.mac, "ff:ff:ff:ff:ff:ff"):
            return None
        return src, msg

    def close(self) -> None:
        self.sock.close()
