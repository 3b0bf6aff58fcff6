"""Admission split over processes ("shards") by TES MAC, and how the shards talk.

The protocol is independent per TES, so one NVE's admission runs as several processes: the
kernel hands each sender's frames to one of them (ethernet.fanout_sockets), and a shard holds
the sessions of exactly the MACs it reads. Python runs one thread at a time per process; shards
put every core to work under an attach storm.

A few things are one per NVE, not per TES, and live in shard 0: the L3 transport's UDP port
(a broadcast DISCOVER must be answered once), RFC 5176 dynamic authorization (port 3799) and
the operator's revocations. When one of them names a MAC, shard 0 applies it to its own
sessions and asks every other shard the same over a unix datagram socket; the answer is
whether anyone had a session. The sockets are abstract, so they live in the NVE's network
namespace, which no tenant can reach.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from tenet.aaa.provisioning import Provisioning

log = logging.getLogger("tenet.shards")

KINDS = ("revoke", "disconnect", "coa")
ASK_TIMEOUT = 1.0  # a shard that does not answer by then counts as "no session here"


@dataclass(frozen=True)
class Command:
    """End (revoke, disconnect) or re-provision (coa: only the set fields change) a MAC's session;
    a revoke with `vn` ends only the session in that VN (tenants reuse MACs), "" every VN's."""

    kind: str
    mac: str
    why: str = ""
    provisioning: Provisioning | None = None
    vn: str = ""


def encode(cmd: Command, token: int = 0) -> bytes:
    doc = {"kind": cmd.kind, "mac": cmd.mac, "why": cmd.why, "token": token,
           "provisioning": asdict(cmd.provisioning) if cmd.provisioning else None, "vn": cmd.vn}
    return json.dumps(doc).encode()


def decode(data: bytes) -> tuple[Command, int]:
    """(command, token); ValueError naming what is wrong."""
    try:
        doc = json.loads(data)
        prov = Provisioning.from_dict(doc["provisioning"]) if doc.get("provisioning") else None
        cmd = Command(doc["kind"], doc["mac"], doc.get("why", ""), prov, doc.get("vn", ""))
        token = int(doc.get("token", 0))
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"malformed shard command: {e}") from None
    if cmd.kind not in KINDS or not isinstance(cmd.mac, str) or not isinstance(cmd.vn, str):
        raise ValueError(f"malformed shard command: kind {cmd.kind!r}")
    return cmd, token


def address(host: str, shard: int) -> bytes:
    return f"\0tenet-admission/{host}/{shard}".encode()


class Peers:
    """Shard 0's side: the same command to every other shard, and whether any had the MAC."""

    def __init__(self, host: str, shards: int) -> None:
        self.host, self.shards = host, shards
        self.lock = threading.Lock()
        self.token = 0

    def ask(self, cmd: Command, timeout: float = ASK_TIMEOUT) -> bool:
        if self.shards <= 1:
            return False
        with self.lock:
            self.token += 1
            token = self.token
        done, waiting = False, set(range(1, self.shards))
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.bind(b"")  # autobind: an abstract address the answers come back to
            for k in sorted(waiting):
                try:
                    s.sendto(encode(cmd, token), address(self.host, k))
                except OSError as e:
                    log.warning("shard %d unreachable: %s", k, e)
                    waiting.discard(k)
            end = time.monotonic() + timeout
            while waiting and (left := end - time.monotonic()) > 0:
                s.settimeout(left)
                try:
                    data = s.recv(256)
                except (TimeoutError, socket.timeout):
                    break
                try:
                    answer = json.loads(data)
                    if answer["token"] != token:
                        continue  # a late answer to an earlier question
                    waiting.discard(answer["shard"])
                    done = done or bool(answer["done"])
                except (ValueError, KeyError, TypeError):
                    continue
        if waiting:
            log.warning("shards %s did not answer %s %s", sorted(waiting), cmd.kind, cmd.mac)
        return done


def serve(host: str, shard: int, apply: Callable[[Command], bool], stopping: threading.Event) -> None:
    """Shard k > 0: apply what shard 0 asks to this shard's sessions, and say whether any matched."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(address(host, shard))
        s.settimeout(0.5)
        while not stopping.is_set():
            try:
                data, peer = s.recvfrom(4096)
            except (TimeoutError, socket.timeout):
                continue
            try:
                cmd, token = decode(data)
            except ValueError as e:
                log.warning("%s", e)
                continue
            done = apply(cmd)
            try:
                s.sendto(json.dumps({"token": token, "shard": shard, "done": done}).encode(), peer)
            except OSError as e:
                log.warning("answer to shard 0 lost: %s", e)
