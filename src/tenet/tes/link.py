"""The TES's Ethernet link: an AF_PACKET socket on one interface, tenet ethertypes only."""
from __future__ import annotations

import json
import select
import subprocess
from pathlib import Path

from tenet.ethernet import PACKET_OUTGOING, packet_socket
from tenet.wire.discovery import DecodeError, Message, frame, unframe



class PacketLink:
    def __init__(self, ifname: str) -> None:
        self.ifname = ifname
        self.mac = Path(f"/sys/class/net/{ifname}/address").read_text().strip()
        self.sock = packet_socket()
        self.sock.bind((ifname, 0))

    @property
    def ip(self) -> str:
        """The interface's IPv4 address with prefix, read fresh (it may be configured late)."""
        out = subprocess.run(["ip", "-j", "-4", "addr", "show", "dev", self.ifname], capture_output=True, text=True).stdout
        addrs = [a for link in json.loads(out or "[]") for a in link.get("addr_info", [])]
        return f"{addrs[0]['local']}/{addrs[0]['prefixlen']}" if addrs else ""

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
