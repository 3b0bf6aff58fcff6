"""Packet captures inside a lab namespace, read back with tshark."""
from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path


class Capture:
    """tcpdump on one interface of one node, started before and stopped after the traffic."""

    def __init__(self, lab, node: str, iface: str, bpf: str = "") -> None:
        self.lab, self.node = lab, node
        self.file = Path(tempfile.mkstemp(suffix=".pcap", prefix="tenet-")[1])
        argv = ["tcpdump", "-U", "--immediate-mode", "-Z", "root", "-n", "-i", iface, "-w", str(self.file)] + ([bpf] if bpf else [])
        self.proc = lab.popen(node, *argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def __enter__(self) -> "Capture":
        line = self.proc.stderr.readline()  # "listening on ..." once the socket is bound
        assert "listening" in line, line
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.3)
        self.proc.terminate()
        self.proc.wait(5)

    def fields(self, display_filter: str, *fields: str, args: tuple[str, ...] = ()) -> list[list[str]]:
        argv = ["tshark", *args, "-r", str(self.file), "-Y", display_filter, "-T", "fields"]
        for f in fields:
            argv += ["-e", f]
        r = subprocess.run(argv, capture_output=True, text=True, check=True)
        return [line.split("\t") for line in r.stdout.splitlines() if line]


def vxlan_to(lab, host: str, group: str, seconds: float) -> int:
    """VXLAN packets to multicast `group` arriving on a host's uplink within `seconds`."""
    with Capture(lab, host, "up0", f"udp port 4789 and dst host {group}") as cap:
        time.sleep(seconds)
    return len(cap.fields("vxlan", "frame.number"))
