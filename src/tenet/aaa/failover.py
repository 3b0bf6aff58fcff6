"""Several RADIUS servers, primary first: which one an exchange goes to (pure; time is an argument).

A server that lets an exchange time out (every retransmission unanswered) is dead: skipped
for `dead_time` seconds (RFC 5080 §2.2.1's advice; vendors' `radius-server deadtime`). Then,
with Status-Server (RFC 5997), it is probed and takes its place in the order again as soon
as it answers; without, it is simply tried again. Any authentic reply from a server proves
it alive. When every server is dead the marks are only guesses, and an exchange is tried on
them all in order rather than refused.

The first packet of an exchange (no State) may move on to the next server when one times
out. A later packet cannot: its State is the first server's, and no other server knows that
conversation — so its timeout ends the exchange, and the authenticator starts over (on
whichever server is then first).
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

DEFAULT_PORT = 1812


class ServerListError(ValueError):
    """A RADIUS server list (config `servers`, `--radius`) that cannot be used, and why."""


class ServerState(str, Enum):
    ALIVE = "alive"
    DEAD = "dead"  # skipped until its dead time is over
    PROBING = "probing"  # still dead: a Status-Server is out to it


@dataclass(frozen=True)
class RadiusServer:
    ip: str
    port: int = DEFAULT_PORT

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"


@dataclass(frozen=True)
class RadiusPolicy:
    """How long to wait for a server and when to give up on it."""

    timeout: float = 2.0  # s per transmission
    retries: int = 1  # retransmissions of the same bytes to one server (vendors' `retransmit`)
    dead_time: float = 10.0  # s a server that timed out is skipped (0: never skipped)
    status_server: bool = True  # probe a dead server with Status-Server before using it again

    def __post_init__(self) -> None:
        problems = []
        if not 0.01 <= self.timeout <= 60:
            problems.append(f"timeout {self.timeout!r} is not 0.01..60 s")
        if type(self.retries) is not int or not 0 <= self.retries <= 10:
            problems.append(f"retries {self.retries!r} is not an integer 0..10")
        if not 0 <= self.dead_time <= 3600:
            problems.append(f"dead_time {self.dead_time!r} is not 0..3600 s")
        if problems:
            raise ValueError("RADIUS: " + "; ".join(problems))


def parse_server(text: str) -> RadiusServer:
    """"IP" or "IP:PORT" (IPv4; port 1812 unless given)."""
    ip, sep, port = text.strip().partition(":")
    try:
        ipaddress.IPv4Address(ip)
    except ValueError:
        raise ServerListError(f"RADIUS server {text.strip()!r}: {ip!r} is not an IPv4 address") from None
    if not sep:
        return RadiusServer(ip)
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ServerListError(f"RADIUS server {text.strip()!r}: port {port!r} is not 1..65535")
    return RadiusServer(ip, int(port))


def parse_servers(text: str | Iterable[str]) -> tuple[RadiusServer, ...]:
    """"IP:PORT,IP:PORT,…" or a list of "IP:PORT": the servers in order, primary first."""
    items = [s for s in text.split(",")] if isinstance(text, str) else list(text)
    if not items or any(not isinstance(s, str) or not s.strip() for s in items):
        raise ServerListError(f"RADIUS servers {text!r}: give IP:PORT entries, comma-separated, primary first")
    servers = tuple(parse_server(s) for s in items)
    seen: set[RadiusServer] = set()
    for s in servers:
        if s in seen:
            raise ServerListError(f"RADIUS server {s} is named twice")
        seen.add(s)
    return servers


@dataclass
class Health:
    state: ServerState = ServerState.ALIVE
    until: float = 0.0  # DEAD: when it may be probed (or tried) again


class Failover:
    """The servers' health and the choice of server (no sockets, no clock)."""

    def __init__(self, servers: tuple[RadiusServer, ...], policy: RadiusPolicy) -> None:
        if not servers:
            raise ServerListError("no RADIUS server")
        self.servers, self.policy = servers, policy
        self.health = [Health() for _ in servers]

    def alive(self, i: int, now: float) -> bool:
        h = self.health[i]
        if h.state is ServerState.DEAD and not self.policy.status_server and now >= h.until:
            h.state = ServerState.ALIVE  # no probing: its dead time over, it is simply tried again
        return h.state is ServerState.ALIVE

    def pick(self, now: float, tried: frozenset[int] = frozenset()) -> int | None:
        """The first live server not yet tried; if none is alive at all, the first untried one
        (dead marks are guesses); None when every candidate has had its chance."""
        live = [i for i in range(len(self.servers)) if self.alive(i, now)]
        for i in live:
            if i not in tried:
                return i
        if live:
            return None
        return next((i for i in range(len(self.servers)) if i not in tried), None)

    def timed_out(self, now: float, i: int) -> bool:
        """Server i let an exchange time out: dead for dead_time. True if it was alive until now."""
        if self.policy.dead_time <= 0:
            return False
        h = self.health[i]
        was = h.state is ServerState.ALIVE
        h.state, h.until = ServerState.DEAD, now + self.policy.dead_time
        return was

    def answered(self, i: int) -> bool:
        """An authentic reply from server i: alive. True if it was dead until now."""
        h = self.health[i]
        was_dead = h.state is not ServerState.ALIVE
        h.state, h.until = ServerState.ALIVE, 0.0
        return was_dead

    def probes(self, now: float) -> list[int]:
        """Dead servers whose dead time is over, now being probed (Status-Server)."""
        if not self.policy.status_server:
            return []
        due = [i for i, h in enumerate(self.health) if h.state is ServerState.DEAD and now >= h.until]
        for i in due:
            self.health[i].state = ServerState.PROBING
        return due

    def probe_failed(self, now: float, i: int) -> None:
        h = self.health[i]
        if h.state is ServerState.PROBING:
            h.state, h.until = ServerState.DEAD, now + self.policy.dead_time

    def states(self) -> dict[RadiusServer, ServerState]:
        return {s: h.state for s, h in zip(self.servers, self.health)}
