"""The TES's links to its NVE: L2 (an AF_PACKET socket, tenet EtherTypes only) and L3 (UDP,
DHCP style, for a TES behind an L3 hop; its data then rides a VXLAN access tunnel)."""
from __future__ import annotations

import fcntl
import select
import socket
import struct
import subprocess
from ipaddress import IPv4Interface
from pathlib import Path
from typing import Protocol

from tenet.ethernet import packet_socket
from tenet.wire.discovery import (
    BROADCAST, CLIENT_PORT, SERVER_PORT, AccessTunnel, DecodeError, Message, TlvType, decode, encode, frame, unframe,
)

TUNNEL_IFACE = "tnt0"
TUNNEL_OVERHEAD = 50  # outer Ethernet + IPv4 + UDP + VXLAN


def _ip(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *argv], capture_output=True, text=True)


def _must(*argv: str) -> None:
    r = _ip(*argv)
    if r.returncode:
        raise RuntimeError(f"ip {' '.join(argv)}: {r.stderr.strip()}")


SIOCGIFADDR, SIOCGIFNETMASK = 0x8915, 0x891B


def iface_ip(ifname: str) -> str:
    """The interface's IPv4 address with prefix, read fresh (it may be configured late) and
    cheaply: two ioctls, no subprocess — it is read on every DISCOVER and REQUEST."""
    req = struct.pack("256s", ifname.encode()[:15])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            addr = socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFADDR, req)[20:24])
            mask = socket.inet_ntoa(fcntl.ioctl(s.fileno(), SIOCGIFNETMASK, req)[20:24])
        except OSError:  # no IPv4 address (yet)
            return ""
    return str(IPv4Interface(f"{addr}/{mask}"))


class Waker(Protocol):
    """Something else that ends a wait for frames (the hypervisor's nudge, tes/nudge.py)."""

    def fileno(self) -> int: ...


def _readable(sock: socket.socket, wake: Waker | None, timeout: float) -> bool:
    """Whether `sock` has a datagram; False on timeout or when woken (the caller looks why)."""
    ready, _, _ = select.select([sock] if wake is None else [sock, wake], [], [], timeout)
    return sock in ready


class PacketLink:
    def __init__(self, ifname: str, wake: Waker | None = None) -> None:
        self.ifname, self.wake = ifname, wake
        self.mac = Path(f"/sys/class/net/{ifname}/address").read_text().strip()
        self.sock = packet_socket()
        self.sock.bind((ifname, 0))
        self.leased = ""

    @property
    def ip(self) -> str:
        return iface_ip(self.ifname)

    def send(self, dst: str, msg: Message) -> None:
        self.sock.sendto(frame(dst, self.mac, msg), (self.ifname, 0))

    def recv(self, timeout: float) -> tuple[str, Message] | None:
        if not _readable(self.sock, self.wake, timeout):
            return None
        data = self.sock.recv(65535)  # incoming only: the socket filter drops what we send
        try:
            dst, src, _, msg = unframe(data)
        except DecodeError:
            return None
        if dst not in (self.mac, "ff:ff:ff:ff:ff:ff"):
            return None
        return src, msg

    def attached(self, nve: str, result: Message) -> None:
        """On L2 the TES's NIC already is its port; it takes the address RADIUS assigned, if any."""
        ip = result.get(TlvType.TES_IP)
        if ip is not None and str(ip) != self.ip:
            _must("addr", "replace", str(ip), "dev", self.ifname)
            self.leased = str(ip)

    def detached(self) -> None:
        """A leased address goes with the session (DHCP-like); a configured one stays."""
        if self.leased:
            _ip("addr", "del", self.leased, "dev", self.ifname)
            self.leased = ""

    def close(self) -> None:
        self.sock.close()


class UdpLink:
    """L3 transport. DISCOVER goes to each configured NVE address (a TES behind a router cannot
    broadcast to it: the addresses play the part of a DHCP relay's helper list) or, with none,
    as a broadcast on the uplink's segment. After Accept the TES's frames travel in a VXLAN
    access tunnel to its NVE (VNI and port from AUTH-RESULT's ACCESS_TUNNEL), on a device that
    carries the TES's MAC and VN address."""

    def __init__(self, uplink: str, mac: str, vn_ip: str, nves: list[str], server_port: int = SERVER_PORT,
                 client_port: int = CLIENT_PORT, tunnel_iface: str = TUNNEL_IFACE, wake: Waker | None = None) -> None:
        self.uplink, self.mac, self.vn_ip, self.nves, self.wake = uplink, mac, vn_ip, nves, wake
        self.server_port, self.tunnel_iface = server_port, tunnel_iface
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, uplink.encode())
        self.sock.bind(("0.0.0.0", client_port))

    @property
    def ip(self) -> str:
        return self.vn_ip  # announced in TES_IP: the address inside the VN, not the underlay one

    def send(self, dst: str, msg: Message) -> None:
        data = encode(msg)
        for target in (self.nves or ["255.255.255.255"]) if dst == BROADCAST else [dst]:
            self.sock.sendto(data, (target, self.server_port))

    def recv(self, timeout: float) -> tuple[str, Message] | None:
        if not _readable(self.sock, self.wake, timeout):
            return None
        data, (src, _) = self.sock.recvfrom(65535)
        try:
            return src, decode(data)
        except DecodeError:
            return None

    def attached(self, nve: str, result: Message) -> None:
        tunnel = result.get(TlvType.ACCESS_TUNNEL)
        if not isinstance(tunnel, AccessTunnel):
            raise RuntimeError(f"NVE {nve} accepted us over L3 without an ACCESS_TUNNEL")
        local = iface_ip(self.uplink).split("/")[0]
        vn_ip = str(result.get(TlvType.TES_IP) or self.vn_ip or "")  # RADIUS's address, else our own
        mtu = int(Path(f"/sys/class/net/{self.uplink}/mtu").read_text()) - TUNNEL_OVERHEAD
        self.detached()  # level: rebuild from scratch, a re-attachment may bring another tunnel
        steps = [
            ("link", "add", self.tunnel_iface, "type", "vxlan", "id", str(tunnel.vni), "remote", nve, "local", local,
             "dstport", str(tunnel.port), "dev", self.uplink, "nolearning"),
            ("link", "set", self.tunnel_iface, "address", self.mac, "mtu", str(mtu)),
            *([("addr", "add", vn_ip, "dev", self.tunnel_iface)] if vn_ip else []),
            ("link", "set", self.tunnel_iface, "up"),
        ]
        for argv in steps:
            _must(*argv)

    def detached(self) -> None:
        if Path(f"/sys/class/net/{self.tunnel_iface}").exists():
            _ip("link", "del", self.tunnel_iface)

    def close(self) -> None:
        self.detached()
        self.sock.close()
