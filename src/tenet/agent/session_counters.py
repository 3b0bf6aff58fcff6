"""Per-session traffic counters for RADIUS accounting, as an nftables table (pure: renders text,
reads listings; agent/accountant.py applies and reads them).

Each admission shard owns one table, `netdev tenet_acct<shard>`, apart from the agent's
`tenet` table: the agent swaps that one whole whenever its tables change, which would zero
every count. Here nothing is ever swapped — objects are added and deleted one by one, so a
session's counters run from its Start to its Stop, across agent and shard restarts (the
table outlives the processes, and its counters carry what a restarted shard needs to resume
each session: port, MAC, start time, user).

A session has two named counters, `c<Acct-Session-Id>_i` (frames from its MAC entering its
port) and `_o` (frames to its MAC leaving it). A port with sessions has two maps, MAC ->
counter, and two base chains on its device that count through them:

    chain ci_<port> { type filter hook ingress device "<port>" priority -270; ether saddr → counter }
    chain co_<port> { type filter hook egress  device "<port>" priority 0;    ether daddr → counter }

Ingress runs after port security (-275: a forged source is dropped, not billed to the MAC it
forged) and before the gate, stages and translation (whose `fwd` ends the hook); NVO3 control
frames were taken off at -300. Egress sees every frame sent on the port, bridged or forwarded
by `fwd` alike. What is counted is the Ethernet frame, destination MAC to the end of the
payload (no preamble, FCS or inter-frame gap): the egress hook's length is exactly that; the
ingress hook's starts after the Ethernet header, so 14 octets per packet are added back
(untagged frames: VLANs never reach a TES's port here). A GSO/GRO aggregate is one skb, so a
packet count is of what the kernel handled, and the headers of merged segments are missing.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from tenet.aaa.accounting import Usage

TABLE = "tenet_acct"
INGRESS_PRIORITY = -270
EGRESS_PRIORITY = 0
ETHERNET_HEADER = 14
PORT = re.compile(r"^[A-Za-z0-9_]{1,15}$")  # a port we can name chains after (tenet's own: tp…, ts…, tna…)
SESSION_ID = re.compile(r"^[0-9a-f]{1,64}$")
MAC = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
USER_OCTETS = 40  # of the User-Name kept in a counter's comment (hex: nft comments hold 128 characters)



def _port_maps(want: "list[Counted]", present: "Iterable[str]", observed: "Observed") -> dict[str, dict[str, str]]:
    """Per port, MAC -> its counter, in and out (`mi_<port>`, `mo_<port>`): for ports present,
    or whose maps the kernel still holds (a port gone keeps its counters until the Stop)."""
    maps: dict[str, dict[str, str]] = {}
    for c in want:
        if c.port in present or f"mi_{c.port}" in observed.maps:
            maps.setdefault(f"mi_{c.port}", {})[c.mac] = c.in_name
            maps.setdefault(f"mo_{c.port}", {})[c.mac] = c.out_name
    return maps

def table_name(shard: int) -> str:
    return f"{TABLE}{shard}"


@dataclass(frozen=True)
class Counted:
    """One session's counters: what the table holds for it."""

    session_id: str  # Acct-Session-Id (lower-case hex)
    port: str
    mac: str
    started: int  # UNIX seconds of its Start
    user_name: str = ""

    def __post_init__(self) -> None:
        if not SESSION_ID.match(self.session_id):
            raise ValueError(f"session id {self.session_id!r} is not lower-case hex")
        if not MAC.match(self.mac):
            raise ValueError(f"{self.mac!r} is not a MAC")

    @property
    def in_name(self) -> str:
        return f"c{self.session_id}_i"

    @property
    def out_name(self) -> str:
        return f"c{self.session_id}_o"

    @property
    def countable(self) -> bool:
        return bool(PORT.match(self.port))

    def comment(self) -> str:
        return f"{self.port} {self.mac} {self.started} {self.user_name.encode()[:USER_OCTETS].hex()}"


@dataclass(frozen=True)
class Observed:
    """The table as read back (or as our last change left it)."""

    exists: bool = False
    counters: dict[str, tuple[int, int, str]] = field(default_factory=dict)  # name -> (packets, bytes, comment)
    maps: dict[str, dict[str, str]] = field(default_factory=dict)  # map -> {MAC: counter name}
    chains: frozenset[str] = frozenset()


def parse(text: str) -> Observed:
    """One or more `nft -j` documents (a table listing, or `list counter` answers) as Observed."""
    counters: dict[str, tuple[int, int, str]] = {}
    maps: dict[str, dict[str, str]] = {}
    chains: set[str] = set()
    exists = False
    for line in text.splitlines():
        if not line.strip():
            continue
        for item in json.loads(line).get("nftables", []):
            if "table" in item:
                exists = True
            elif "counter" in item:
                c = item["counter"]
                counters[c["name"]] = (int(c.get("packets", 0)), int(c.get("bytes", 0)), c.get("comment", ""))
            elif "map" in item:
                m = item["map"]
                maps[m["name"]] = {str(k): str(v) for k, v in m.get("elem", [])}
            elif "chain" in item:
                chains.add(item["chain"]["name"])
    return Observed(exists or bool(counters or maps or chains), counters, maps, frozenset(chains))


def recorded(observed: Observed) -> tuple[Counted, ...]:
    """The sessions whose counters the table holds, read from the counters' comments (what a
    restarted shard resumes, or closes if their session is gone)."""
    out: dict[str, Counted] = {}
    for name, (_, _, comment) in observed.counters.items():
        if not (name.startswith("c") and name.endswith("_i")):
            continue
        parts = comment.split(" ")
        if len(parts) != 4 or f"{name[:-2]}_o" not in observed.counters:
            continue
        port, mac, started, user = parts
        try:
            out[name] = Counted(name[1:-2], port, mac, int(started), bytes.fromhex(user).decode(errors="replace"))
        except ValueError:
            continue
    return tuple(out[k] for k in sorted(out))


def usage(values: dict[str, tuple[int, int, str]], c: Counted) -> Usage | None:
    """A session's counts as accounting reports them (Ethernet frames), or None if unread."""
    i, o = values.get(c.in_name), values.get(c.out_name)
    if i is None or o is None:
        return None
    return Usage(input_octets=i[1] + ETHERNET_HEADER * i[0], output_octets=o[1], input_packets=i[0], output_packets=o[0])


def _q(text: str) -> str:
    return '"' + text.replace('"', "") + '"'


def plan(table: str, desired: Iterable[Counted], observed: Observed, present: frozenset[str]) -> str:
    """The nft script that turns `observed` into `desired` without touching what stays: new
    sessions' counters; chains and maps for ports with sessions (only present ports: older
    kernels refuse a hook on a missing device); map elements added and removed; what belongs to
    no session any more deleted — elements first, so its counters can go in the same commit.
    "" when nothing is to change."""
    want = [c for c in desired if c.countable]
    lines: list[str] = []
    if not observed.exists:
        lines.append(f"add table netdev {table}")
    names: set[str] = set()
    for c in want:
        names |= {c.in_name, c.out_name}
        for name in (c.in_name, c.out_name):
            if name not in observed.counters:
                lines.append(f"add counter netdev {table} {name} {{ comment {_q(c.comment())}; }}")
    elements = _port_maps(want, present, observed)
    ports = {m[3:] for m in elements}
    for port in sorted(ports):
        for d, hook, prio, addr in (("i", "ingress", INGRESS_PRIORITY, "saddr"), ("o", "egress", EGRESS_PRIORITY, "daddr")):
            if f"m{d}_{port}" not in observed.maps:
                lines.append(f"add map netdev {table} m{d}_{port} {{ type ether_addr : counter; }}")
            if f"c{d}_{port}" not in observed.chains and port in present:
                lines.append(f"add chain netdev {table} c{d}_{port} {{ type filter hook {hook} device {_q(port)}"
                             f" priority {prio}; policy accept; }}")
                lines.append(f"add rule netdev {table} c{d}_{port} counter name ether {addr} map @m{d}_{port}")
    for m, have in sorted(observed.maps.items()):
        wanted = elements.get(m, {})
        stale = [mac for mac, name in sorted(have.items()) if wanted.get(mac) != name]
        if stale:
            lines.append(f"delete element netdev {table} {m} {{ {', '.join(stale)} }}")
    for m, wanted in sorted(elements.items()):
        have = observed.maps.get(m, {})
        new = [f'{mac} : "{name}"' for mac, name in sorted(wanted.items()) if have.get(mac) != name]
        if new:
            lines.append(f"add element netdev {table} {m} {{ {', '.join(new)} }}")
    for chain in sorted(observed.chains):
        if chain[3:] not in ports and chain[:3] in ("ci_", "co_"):
            lines.append(f"delete chain netdev {table} {chain}")
    for m in sorted(observed.maps):
        if m not in elements:
            lines.append(f"delete map netdev {table} {m}")
    for name in sorted(observed.counters):
        if name not in names:
            lines.append(f"delete counter netdev {table} {name}")
    return "".join(f"{line}\n" for line in lines)


def after(table: str, desired: Iterable[Counted], observed: Observed, present: frozenset[str]) -> Observed:
    """What the table holds once `plan`'s script is applied (counter values as observed, 0 for
    new ones): the accountant's model of the kernel until its next full read."""
    want = [c for c in desired if c.countable]
    counters = {n: observed.counters.get(n, (0, 0, c.comment())) for c in want for n in (c.in_name, c.out_name)}
    maps = _port_maps(want, present, observed)
    ports = {m[3:] for m in maps}
    chains = {ch for ch in observed.chains if ch[3:] in ports}
    chains |= {f"c{d}_{p}" for p in ports if p in present for d in "io"}
    return Observed(True, counters, maps, frozenset(chains))


def part(observed: Observed, ports: set[str], counters: set[str]) -> Observed:
    """The share of `observed` that belongs to `ports` and `counters` (what an incremental plan
    looks at: only the ports and sessions that changed, not every session of the shard)."""
    return Observed(observed.exists, {n: v for n, v in observed.counters.items() if n in counters},
                    {m: e for m, e in observed.maps.items() if m[3:] in ports},
                    frozenset(ch for ch in observed.chains if ch[3:] in ports))


def merge(observed: Observed, share: Observed, ports: set[str], counters: set[str]) -> Observed:
    """`observed` with the share of `ports` and `counters` replaced by `share`."""
    kept = {n: v for n, v in observed.counters.items() if n not in counters}
    maps = {m: e for m, e in observed.maps.items() if m[3:] not in ports}
    chains = {ch for ch in observed.chains if ch[3:] not in ports}
    return Observed(observed.exists or share.exists, {**kept, **share.counters}, {**maps, **share.maps},
                    frozenset(chains | share.chains))


def reads(table: str, sessions: Iterable[Counted]) -> str:
    """`nft -j` commands reading these sessions' counters (one JSON document per counter)."""
    return "".join(f"list counter netdev {table} {n}\n" for c in sessions if c.countable for n in (c.in_name, c.out_name))
