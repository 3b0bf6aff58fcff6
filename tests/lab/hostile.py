"""The hostile side of test_adversary.py: frames crafted with scapy, each carrying a unique
marker, sent in batches from inside a lab namespace, and looked for by marker in captures on
the VMs where they must not arrive."""
from __future__ import annotations

import itertools
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

from capture import Capture

INJECT = Path(__file__).with_name("inject.py")
MARK = re.compile(rb"<ADV\d{6}>")  # 11 bytes: fits in a runt after its Ethernet header
RATE = 4000  # frames/s: paced, so that no queue drops what would otherwise have leaked
PLACEHOLDER = b"<ADV000000>"
_serial = itertools.count(1)  # markers are unique across the whole module


def new_marker() -> bytes:
    return b"<ADV%06d>" % next(_serial)


@dataclass
class Batch:
    """One attack's frames, each with its marker and a line saying what it was."""

    frames: list[bytes] = field(default_factory=list)
    what: dict[bytes, str] = field(default_factory=dict)

    def add(self, what: str, build: Callable[[bytes], Packet | bytes]) -> bytes:
        marker = new_marker()
        self.frames.append(bytes(build(marker)))
        self.what[marker] = what
        return marker

    def copies(self, what: str, build: Callable[[bytes], Packet | bytes], n: int) -> None:
        """`n` frames built once and re-marked: a storm without building each in scapy."""
        template = bytes(build(PLACEHOLDER))
        assert template.count(PLACEHOLDER) == 1
        for _ in range(n):
            marker = new_marker()
            self.frames.append(template.replace(PLACEHOLDER, marker))
            self.what[marker] = what

    def only(self, keep: Callable[[str], bool]) -> "Batch":
        """The part of this batch whose descriptions `keep` accepts (for counting, not sending)."""
        return Batch(what={m: w for m, w in self.what.items() if keep(w)})

    def leaks(self, seen: dict[str, set[bytes]], where: set[str] | list[str] | tuple[str, ...]) -> dict[str, list[str]]:
        """Where (of `where`) which of this batch's frames arrived: {} when none did."""
        out = {vm: sorted({self.what[m] for m in seen[vm] if m in self.what}) for vm in where}
        return {vm: w for vm, w in out.items() if w}

    def count(self, seen: dict[str, set[bytes]], where) -> int:
        return sum(len(seen[vm] & self.what.keys()) for vm in where)


def udp(src: str, dst: str, ip_src: str, ip_dst: str, marker: bytes, size: int = 0) -> Packet:
    """An IPv4/UDP frame (discard port) whose payload is the marker, padded to `size` bytes. No
    UDP checksum (0 is legal in IPv4), so a copy with another marker stays a valid frame."""
    return Ether(src=src, dst=dst) / IP(src=ip_src, dst=ip_dst) / UDP(sport=40000, dport=9, chksum=0) / Raw(marker.ljust(size, b"."))


def vxlan(outer: Ether, ip_src: str, ip_dst: str, vni: int, inner: Packet, ttl: int = 16) -> Packet:
    """A VXLAN packet as a tenet host would send it: UDP 4789, the VN-ID as its VNI."""
    return outer / IP(src=ip_src, dst=ip_dst, ttl=ttl) / UDP(sport=49152, dport=4789) / VXLAN(vni=vni, flags=0x08) / inner


def group_mac(group: str) -> str:
    """The Ethernet address an IPv4 group maps to (RFC 1112: 01:00:5e + its low 23 bits)."""
    a = [int(x) for x in group.split(".")]
    return "01:00:5e:%02x:%02x:%02x" % (a[1] & 0x7F, a[2], a[3])


def send(ns: str, iface: str, frames: list[bytes], rate: float = RATE) -> tuple[int, int]:
    """Send a batch from namespace `ns`; (sent, refused by the sender's own kernel)."""
    r = subprocess.run(["ip", "netns", "exec", ns, sys.executable, str(INJECT), iface, str(rate)],
                       input="\n".join(f.hex() for f in frames), capture_output=True, text=True, timeout=120, check=True)
    sent, refused = (int(x) for x in r.stdout.split())
    return sent, refused


def start_sending(ns: str, iface: str, frames: list[bytes], rate: float) -> subprocess.Popen:
    """As `send`, in the background (a storm while something else is measured)."""
    p = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, str(INJECT), iface, str(rate)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    p.stdin.write("\n".join(f.hex() for f in frames))
    p.stdin.close()
    return p


@contextmanager
def watching(lab, vms: tuple[str, ...], uplinks: tuple[str, ...] = ()) -> Iterator[dict[str, set[bytes]]]:
    """Captures on every listed VM's eth0 and every listed host's uplink for the duration;
    afterwards the markers each node saw, by node name."""
    seen: dict[str, set[bytes]] = {}
    with ExitStack() as stack:
        caps = {node: stack.enter_context(_Quiet(lab, node, iface))
                for nodes, iface in ((vms, "eth0"), (uplinks, "up0")) for node in nodes}
        yield seen
        time.sleep(0.5)  # the last frames cross a router and a decapsulation
    for vm, cap in caps.items():
        seen[vm] = set(MARK.findall(cap.file.read_bytes()))
        cap.file.unlink()


class _Quiet(Capture):
    """A capture that stops without its own settling pause: `watching` waits once for all."""

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(5)
