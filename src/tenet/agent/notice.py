"""What admission tells its host's agent, on a unix datagram socket in the host's namespace
(abstract: only that namespace reaches it). agent/fast_lane.py listens; a lost notice only
means the TES waits for the controller, as it would without the lane."""
from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass

from tenet.store.records import EndpointReport

log = logging.getLogger("tenet.notice")


@dataclass(frozen=True)
class Admitted:
    """Admission authorized this TES or MAC and is reporting it to the store."""

    report: EndpointReport


@dataclass(frozen=True)
class Reported:
    """Admission's reports of these (VN, MAC)s are in the store as of `revision`."""

    revision: int
    admitted: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Withdrawn:
    """Admission ended this MAC's session or authorization in this VN."""

    vn: str
    mac: str


Notice = Admitted | Reported | Withdrawn


def notice_address(host: str) -> str:
    return f"\0tenet-fast-{host}"


def encode_notice(n: Notice) -> bytes:
    if isinstance(n, Admitted):
        return b"A" + n.report.to_json()
    if isinstance(n, Reported):
        return b"R" + json.dumps({"revision": n.revision, "admitted": n.admitted}).encode()
    return b"W" + json.dumps({"vn": n.vn, "mac": n.mac}).encode()


def decode_notice(data: bytes) -> Notice:
    """ValueError naming the cause for anything but a notice encode_notice wrote."""
    kind, body = data[:1], data[1:]
    if kind == b"A":
        return Admitted(EndpointReport.from_json(body))
    try:
        if kind == b"W":
            d = json.loads(body)
            return Withdrawn(str(d["vn"]), str(d["mac"]))
        if kind == b"R":
            d = json.loads(body)
            return Reported(int(d["revision"]), tuple((str(vn), str(mac)) for vn, mac in d["admitted"]))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{'withdraw' if kind == b'W' else 'reported'} notice: {e!r}") from None
    raise ValueError(f"notice of unknown kind {kind!r}")


class Notifier:
    """Admission's side: never blocks and never fails admission — a lost notice only means
    the TES waits for the controller, as it would without a fast lane."""

    def __init__(self, host: str) -> None:
        self.address = notice_address(host)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setblocking(False)

    def send(self, notice: Notice) -> None:
        try:
            self.sock.sendto(encode_notice(notice), self.address)
        except OSError as e:
            log.debug("fast lane notice not sent: %s", e)
