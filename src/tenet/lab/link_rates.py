"""The live rate of each virtual link, where a lab can see it: the byte counters of the link's
HTB class on the uplinks it crosses (compute/qos.py), read with `tc -s class show` in the lab's
host namespaces, twice, and differenced. A deployment's hosts are not this machine's
namespaces: there the agents' metrics are the place to ask (not read here)."""
from __future__ import annotations

import re
import subprocess
import threading
import time
from dataclasses import dataclass

from tenet.compute.qos import UPLINK_MAJOR, uplinks_qos
from tenet.lab.plan import netns_name
from tenet.model.tenancy import Intent

INTERVAL = 0.5  # seconds between the two counter readings when no recent one is kept
FRESH = 10.0  # a kept reading older than this is not differenced against
CLASS = re.compile(r"^class htb ([0-9a-f]+):([0-9a-f]+) .*?\n\s*Sent (\d+) bytes", re.M | re.S)


@dataclass(frozen=True)
class Reading:
    at: float  # monotonic seconds
    bytes: int


def sent_bytes(tc_output: str) -> dict[int, int]:
    """minor -> bytes sent, for the classes of tenet's uplink HTB in `tc -s class show` output."""
    out = {}
    for block in re.split(r"\n(?=class )", tc_output):
        m = CLASS.match(block.strip() + "\n")
        if m and int(m.group(1), 16) == UPLINK_MAJOR:
            out[int(m.group(2), 16)] = int(m.group(3))
    return out


class LinkRates:
    """Samples a lab's uplink classes; keeps the last reading of each to difference against."""

    def __init__(self, lab: str) -> None:
        self.lab = lab
        self._lock = threading.Lock()
        self._last: dict[tuple[str, int], Reading] = {}

    def _read(self, host: str, dev: str) -> dict[int, int]:
        r = subprocess.run(["ip", "netns", "exec", netns_name(self.lab, host), "tc", "-s", "class", "show", "dev", dev],
                           capture_output=True, text=True, timeout=5)
        return sent_bytes(r.stdout) if r.returncode == 0 else {}

    def rates(self, intent: Intent) -> dict[str, dict[str, float]]:
        """link -> host -> bit/s leaving that host's uplink in the link's class now."""
        uplinks = {h.name: h.uplink for h in intent.fabric.hosts}
        wanted = {(host, c.minor): c.vl for host, q in uplinks_qos(intent).items() if q for c in q.classes}
        if not wanted:
            return {}
        with self._lock:
            hosts = sorted({h for h, _ in wanted})
            now = {(h, minor): Reading(time.monotonic(), b) for h in hosts for minor, b in self._read(h, uplinks[h]).items()}
            if any(k not in self._last or now[k].at - self._last[k].at > FRESH for k in now):
                time.sleep(INTERVAL)
                self._last, now = now, {(h, minor): Reading(time.monotonic(), b)
                                        for h in hosts for minor, b in self._read(h, uplinks[h]).items()}
            out: dict[str, dict[str, float]] = {}
            for k, vl in wanted.items():
                before, after = self._last.get(k), now.get(k)
                if before and after and after.at > before.at and after.bytes >= before.bytes:
                    out.setdefault(vl, {})[k[0]] = 8 * (after.bytes - before.bytes) / (after.at - before.at)
            self._last.update(now)
            return out
