"""An agent's configuration file (TOML), as an operator writes it on each host.

Everything the agent needs to serve its host is here or on the host itself (its uplink's
address): nothing depends on a lab having wired it. docs/agent.md documents every key.

    host = "host1"                      # this host's name in the fabric
    store = "etcd://10.0.0.1:2379,10.0.0.2:2379?cacert=/etc/tenet/ca.pem&cert=...&key=..."
    uplink = "eth1"                     # the interface on the physical network
    network = "pn1"                     # that physical network's name in the fabric
    role = "hypervisor"                 # or "access-switch"
    capability = 100                    # what a discovering TES selects by
    admission_shards = 0                # 0: one per CPU (at most 4)
    authenticator = false               # an 802.1X authenticator (hosts behind its ports vouch for their VMs)
    mab = false                         # authenticators: MAC Authentication Bypass
    lease_ttl = 5                       # seconds: the host is shown down this long after its agent died
    resync = 2.0                        # seconds between full read-backs of the kernel
    fast_lane = true                    # forward for what this NVE admitted before the controller answers
    metrics = "127.0.0.1:9108"          # serve Prometheus metrics there (docs/metrics.md); none: not served

    [radius]                            # enables NVO3 admission (EAP relayed to RADIUS)
    servers = ["10.0.0.5:1812", "10.0.0.6:1812"]   # primary first (or one: server = "10.0.0.5:1812")
    secret_file = "/etc/tenet/radius.secret"
    timeout = 2.0                       # seconds per transmission
    retries = 1                         # retransmissions to one server before the next is tried
    dead_time = 10                      # seconds a server that timed out is skipped
    status_server = true                # probe a dead server (RFC 5997) before using it again
    accounting_port = 1813              # RADIUS accounting to the same server(s); 0: no accounting
    interim = 60                        # seconds between Interim-Updates (Acct-Interim-Interval overrides); 0: none
    interim_min = 60                    # the shortest interval honoured, RADIUS's or ours (RFC 2869 §5.16)

    [discovery]                         # TESs behind an L3 hop
    udp_port = 6767                     # 0: L2 discovery only
    tunnel_port = 4790
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from tenet.aaa.failover import RadiusPolicy, ServerListError, parse_servers
from tenet.exposition import ListenError, parse_listen
from tenet.model.fabric import Host
from tenet.store.records import HostRole
from tenet.wire.discovery import ACCESS_TUNNEL_PORT, SERVER_PORT

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$")
IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
ENDPOINT = re.compile(r"^[0-9.]+:[0-9]{1,5}$")
TOP = {"host", "store", "uplink", "network", "role", "capability", "admission_shards", "authenticator", "mab", "lease_ttl", "resync",
       "fast_lane", "metrics", "radius", "discovery"}
SECTIONS = {"radius": {"server", "servers", "secret_file", "timeout", "retries", "dead_time", "status_server",
                      "accounting_port", "interim", "interim_min"},
            "discovery": {"udp_port", "tunnel_port"}}
MAX_INTERIM = 86400


class ConfigError(ValueError):
    """The file, and every key that is wrong in it."""


@dataclass(frozen=True)
class Accounting:
    """RADIUS accounting (agent/accountant.py): where, and how often Interim-Updates go."""

    port: int = 1813  # on every RADIUS server; 0: no accounting
    interim: int = 60  # seconds; 0: no interims unless the Access-Accept's Acct-Interim-Interval asks
    interim_min: int = 60  # RFC 2869 §5.16 recommends no less than 60 s; a lab goes lower

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"accounting port {self.port} is not 0..65535")
        if not 0 <= self.interim <= MAX_INTERIM:
            raise ValueError(f"interim {self.interim} is not 0..{MAX_INTERIM} seconds")
        if not 1 <= self.interim_min <= MAX_INTERIM:
            raise ValueError(f"interim_min {self.interim_min} is not 1..{MAX_INTERIM} seconds")


@dataclass(frozen=True, kw_only=True)
class AgentConfig:
    host: str
    store: str
    uplink: str
    network: str
    role: HostRole = HostRole.HYPERVISOR
    capability: int = 100
    admission_shards: int = 0
    authenticator: bool = False
    mab: bool = False
    lease_ttl: int = 5
    resync: float = 2.0
    fast_lane: bool = True  # agent/fast_lane.py: admissions and peers' hints applied before the tables
    metrics: str = ""  # "ADDR:PORT" to serve Prometheus metrics at; empty: not served
    radius: str = ""  # "IP:PORT,IP:PORT,…", primary first; empty: no NVO3 admission
    secret_file: str = ""
    radius_policy: RadiusPolicy = RadiusPolicy()  # timeouts, retries, dead time (aaa/failover.py)
    udp_port: int = SERVER_PORT
    tunnel_port: int = ACCESS_TUNNEL_PORT
    accounting: Accounting = Accounting()


def config_for(host: Host, store: str, radius: str = "", secret_file: str = "", fast_lane: bool = True,
               metrics: str = "", radius_policy: RadiusPolicy = RadiusPolicy(),
               accounting: Accounting = Accounting()) -> AgentConfig:
    """The file a fabric's declared host needs (the lab writes one per host, as an operator
    would): what its agent registers is then that host again. `radius`: "IP:PORT,IP:PORT"."""
    return AgentConfig(host=host.name, store=store, uplink=host.uplink, network=host.network, role=HostRole(host.role),
                       capability=host.capability, admission_shards=host.admission_shards, authenticator=host.switch,
                       mab=host.mab, radius=radius, secret_file=secret_file, fast_lane=fast_lane, metrics=metrics,
                       radius_policy=radius_policy, accounting=accounting)


def with_metrics(config: AgentConfig, listen: str) -> AgentConfig:
    """The config with `metrics` replaced (tenet-agent --metrics); ConfigError if malformed."""
    if listen:
        try:
            parse_listen(listen)
        except ListenError as e:
            raise ConfigError(f"--metrics: {e}") from None
    return replace(config, metrics=listen)


def load_config(path: str | Path) -> AgentConfig:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return config_of(text, str(path))


def config_of(text: str, source: str = "") -> AgentConfig:
    """A config from the file's text; ConfigError names every problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source or 'agent config'}: not valid TOML: {e}") from None
    return parse_config(doc, source)


def parse_config(doc: dict, source: str = "") -> AgentConfig:
    problems: list[str] = []
    for k in sorted(set(doc) - TOP):
        problems.append(f"{k}: unknown key (expected one of {', '.join(sorted(TOP))})")
    for section, allowed in SECTIONS.items():
        value = doc.get(section, {})
        if not isinstance(value, dict):
            problems.append(f"{section}: must be a table")
            continue
        for k in sorted(set(value) - allowed):
            problems.append(f"{section}.{k}: unknown key (expected one of {', '.join(sorted(allowed))})")

    def want(path: str, value: Any, ok: bool, expect: str) -> Any:
        if not ok:
            problems.append(f"{path}: {expect}, not {value!r}")
        return value

    def required(key: str, pattern: re.Pattern, expect: str) -> str:
        if key not in doc:
            problems.append(f"{key}: required")
            return ""
        v = doc[key]
        return want(key, v, isinstance(v, str) and bool(pattern.match(v)), expect)

    def integer(key: str, default: int, low: int, high: int, where: dict | None = None, path: str = "") -> int:
        v = (doc if where is None else where).get(key, default)
        return want(path or key, v, type(v) is int and low <= v <= high, f"an integer {low}..{high}")

    host = required("host", NAME, "a name like [A-Za-z0-9][A-Za-z0-9_-]{0,30}")
    store = required("store", re.compile(r"^(sqlite:///|etcd://)."), "a store URL (sqlite:///path or etcd://host:port,...)")
    uplink = required("uplink", IFNAME, "an interface name of 1..15 characters")
    network = required("network", NAME, "a physical network's name")
    role_text = doc.get("role", HostRole.HYPERVISOR.value)
    role = HostRole.HYPERVISOR
    if isinstance(role_text, str) and role_text in {r.value for r in HostRole}:
        role = HostRole(role_text)
    else:
        problems.append(f"role: one of {', '.join(r.value for r in HostRole)}, not {role_text!r}")
    capability = integer("capability", 100, 0, 2**32 - 1)
    shards = integer("admission_shards", 0, 0, 64)
    authenticator = want("authenticator", doc.get("authenticator", False), isinstance(doc.get("authenticator", False), bool),
                         "true or false")
    mab = want("mab", doc.get("mab", False), isinstance(doc.get("mab", False), bool), "true or false")
    fast = want("fast_lane", doc.get("fast_lane", True), isinstance(doc.get("fast_lane", True), bool), "true or false")
    ttl = integer("lease_ttl", 5, 2, 300)
    metrics = doc.get("metrics", "")
    if not isinstance(metrics, str):
        problems.append(f"metrics: ADDR:PORT, not {metrics!r}")
        metrics = ""
    elif metrics:
        try:
            parse_listen(metrics)
        except ListenError as e:
            problems.append(f"metrics: {e}")
    resync = doc.get("resync", 2.0)
    want("resync", resync, type(resync) in (int, float) and 0.1 <= resync <= 3600, "seconds from 0.1 to 3600")
    radius = doc.get("radius", {}) if isinstance(doc.get("radius", {}), dict) else {}
    servers, secret = _servers(radius, problems), radius.get("secret_file", "")
    policy = _policy(radius, problems)
    if radius:
        want("radius.secret_file", secret, isinstance(secret, str) and bool(secret), "a file holding the shared secret")
    acct_port = integer("accounting_port", Accounting.port, 0, 65535, radius, "radius.accounting_port")
    interim = integer("interim", Accounting.interim, 0, MAX_INTERIM, radius, "radius.interim")
    interim_min = integer("interim_min", Accounting.interim_min, 1, MAX_INTERIM, radius, "radius.interim_min")
    disc = doc.get("discovery", {}) if isinstance(doc.get("discovery", {}), dict) else {}
    udp = integer("udp_port", SERVER_PORT, 0, 65535, disc, "discovery.udp_port")
    tunnel = integer("tunnel_port", ACCESS_TUNNEL_PORT, 1, 65535, disc, "discovery.tunnel_port")
    if problems:
        raise ConfigError(f"{source or 'agent config'}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))
    return AgentConfig(host=host, store=store, uplink=uplink, network=network, role=role, capability=capability,
                       admission_shards=shards, authenticator=authenticator, mab=mab, lease_ttl=ttl, resync=float(resync), fast_lane=fast, metrics=metrics, radius=servers,
                       secret_file=secret, radius_policy=policy, udp_port=udp, tunnel_port=tunnel,
                       accounting=Accounting(acct_port, interim, interim_min))


def _servers(radius: dict, problems: list[str]) -> str:
    """[radius] `servers = ["IP:PORT", …]` (primary first) or `server = "IP:PORT"`: as the
    comma-separated list the admission processes take."""
    if not radius:
        return ""
    if "server" in radius and "servers" in radius:
        problems.append("radius: give `servers` (a list, primary first) or `server`, not both")
        return ""
    if "servers" in radius:
        items, key = radius["servers"], "radius.servers"
        if not isinstance(items, list) or not items:
            problems.append(f"{key}: a list of IP:PORT strings, primary first, not {items!r}")
            return ""
    else:
        items, key = [radius.get("server", "")], "radius.server"
    bad = [x for x in items if not isinstance(x, str) or not ENDPOINT.match(x)]
    if bad:
        problems.append(f"{key}: IP:PORT, not {bad[0]!r}")
        return ""
    try:
        return ",".join(str(s) for s in parse_servers(items))
    except ServerListError as e:
        problems.append(f"{key}: {e}")
        return ""


def _policy(radius: dict, problems: list[str]) -> RadiusPolicy:
    default = RadiusPolicy()
    timeout, retries = radius.get("timeout", default.timeout), radius.get("retries", default.retries)
    dead, probe = radius.get("dead_time", default.dead_time), radius.get("status_server", default.status_server)
    ok = True
    if type(timeout) not in (int, float) or not 0.1 <= timeout <= 60:
        problems.append(f"radius.timeout: seconds from 0.1 to 60, not {timeout!r}")
        ok = False
    if type(retries) is not int or not 0 <= retries <= 10:
        problems.append(f"radius.retries: an integer 0..10 (retransmissions to one server), not {retries!r}")
        ok = False
    if type(dead) not in (int, float) or not 0 <= dead <= 3600:
        problems.append(f"radius.dead_time: seconds from 0 to 3600, not {dead!r}")
        ok = False
    if not isinstance(probe, bool):
        problems.append(f"radius.status_server: true or false, not {probe!r}")
        ok = False
    return RadiusPolicy(float(timeout), retries, float(dead), probe) if ok else default


def render(c: AgentConfig) -> str:
    """The file for a config (the lab writes one per host, as an operator would)."""
    lines = [f'host = "{c.host}"', f'store = "{c.store}"', f'uplink = "{c.uplink}"', f'network = "{c.network}"',
             f'role = "{c.role.value}"', f"capability = {c.capability}", f"admission_shards = {c.admission_shards}",
             f"authenticator = {'true' if c.authenticator else 'false'}", f"mab = {'true' if c.mab else 'false'}", f"lease_ttl = {c.lease_ttl}", f"resync = {c.resync}",
             f"fast_lane = {'true' if c.fast_lane else 'false'}"]
    if c.metrics:
        lines.append(f'metrics = "{c.metrics}"')
    if c.radius:
        servers = c.radius.split(",")
        listed = "servers = [" + ", ".join(f'"{s}"' for s in servers) + "]"
        p = c.radius_policy
        lines += ["", "[radius]", listed if len(servers) > 1 else f'server = "{c.radius}"', f'secret_file = "{c.secret_file}"',
                  f"timeout = {p.timeout}", f"retries = {p.retries}", f"dead_time = {p.dead_time}",
                  f"status_server = {'true' if p.status_server else 'false'}"]
        a = c.accounting
        lines += [f"accounting_port = {a.port}", f"interim = {a.interim}", f"interim_min = {a.interim_min}"]
    lines += ["", "[discovery]", f"udp_port = {c.udp_port}", f"tunnel_port = {c.tunnel_port}"]
    return "\n".join(lines) + "\n"
