"""Every value the store holds, as a frozen dataclass with to_json/from_json (keys.py says where).

Together with keys.py this is the store's schema: a process writes a record's to_json() and
the reader gets the same record back from from_json(), or a RecordError naming the record
and the field that is wrong — never a half-read dict. Stored values outlive restarts and
upgrades, so from_json accepts every form today's and earlier writers produced (noted per
field); to_json may add fields, never rename or drop one.

A host's tables (compute/tables.py) are the largest record; their codec lives beside their
dataclasses in the pure core and is re-exported here.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

from tenet.aaa.provisioning import Provisioning
from tenet.compute.qos import LinkClass, UplinkQos
from tenet.compute.tables import HostTables, Servable
from tenet.model.load import intent_to_doc
from tenet.model.parts import split
from tenet.model.tenancy import Intent

__all__ = [
    "AdmissionReady", "AgentState", "AgentStatus", "Alive", "Chassis", "EndpointKind", "EndpointReport", "ExtMac", "HostRole",
    "HostTables", "Leader", "Observed", "Servables", "TablesHead", "VnDigest", "ProxyPort", "ProxyPorts", "RecordError", "ReportedTunnel", "Revocation",
    "fabric_to_json", "part_from_json", "tenancy_to_json",
]


class RecordError(ValueError):
    """A stored value that is not the record its key promises: names the record and the field."""


_MISSING: Any = object()
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def _doc(data: str | bytes, record: str) -> dict:
    try:
        d = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise RecordError(f"{record}: not JSON: {e}") from None
    if not isinstance(d, dict):
        raise RecordError(f"{record}: expected a JSON object, got {type(d).__name__}")
    return d


def _get(d: Mapping, record: str, name: str, kind: type | tuple[type, ...], default: Any = _MISSING) -> Any:
    """d[name], checked to be of `kind` (a JSON bool is not an int); `default` when absent."""
    if name not in d:
        if default is _MISSING:
            raise RecordError(f"{record}.{name}: missing")
        return default
    v = d[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(v, kinds) or (isinstance(v, bool) and bool not in kinds):
        want = " or ".join(k.__name__ for k in kinds)
        raise RecordError(f"{record}.{name}: expected {want}, got {json.dumps(v)}")
    return v


def _dumps(d: dict) -> bytes:
    return json.dumps(d, sort_keys=True).encode()


# -- /tenet/hosts/<host>/status ------------------------------------------------------------
class AgentState(str, Enum):
    """Where a host's agent is with its tables (the lab waits for CONVERGED)."""

    WAITING_FOR_TABLES = "waiting for tables"
    WAITING_FOR_PORTS = "waiting for ports"
    CONVERGED = "converged"
    ERROR = "error"


@dataclass(frozen=True, kw_only=True)
class AgentStatus:
    """What the agent last achieved: the generation of the tables it applied (0: none yet,
    -1: the pass failed) and their content hash, and which VM ports it still waits for."""

    generation: int
    state: AgentState
    content_hash: str = ""
    missing_ports: tuple[str, ...] = ()
    error: str = ""
    provisional: int = 0  # rows it forwards for before the tables name them (agent/provisional.py)

    def converged_on(self, tables: HostTables) -> bool:
        return self.state is AgentState.CONVERGED and self.generation == tables.generation

    def to_json(self) -> bytes:
        d: dict = {"generation": self.generation, "state": self.state.value}
        if self.content_hash or self.state in (AgentState.CONVERGED, AgentState.WAITING_FOR_PORTS):
            d["content_hash"], d["missing_ports"] = self.content_hash, list(self.missing_ports)
        if self.error:
            d["error"] = self.error
        if self.provisional:
            d["provisional"] = self.provisional
        return _dumps(d)

    @classmethod
    def from_json(cls, data: str | bytes) -> AgentStatus:
        r, d = "agent status", _doc(data, "agent status")
        state = _get(d, r, "state", str)
        try:
            st = AgentState(state)
        except ValueError:
            raise RecordError(f"{r}.state: {state!r} is none of {', '.join(s.value for s in AgentState)}") from None
        ports = _get(d, r, "missing_ports", list, [])
        if not all(isinstance(p, str) for p in ports):
            raise RecordError(f"{r}.missing_ports: expected a list of port names")
        return cls(generation=_get(d, r, "generation", int), state=st, content_hash=_get(d, r, "content_hash", str, ""),
                   missing_ports=tuple(ports), error=_get(d, r, "error", str, ""),
                   provisional=_get(d, r, "provisional", int, 0))


# -- /tenet/hosts/<host>/admission/<shard> -------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class AdmissionReady:
    """One admission process (shard) serves: who it is and which VNs it offers (none without RADIUS)."""

    pid: int
    serves: tuple[str, ...]
    shard: int = 0
    shards: int = 1

    def __post_init__(self) -> None:
        if self.shards < 1 or not 0 <= self.shard < self.shards:
            raise RecordError(f"admission ready.shard: {self.shard} is not one of {self.shards} shard(s)")

    def to_json(self) -> bytes:
        return _dumps({"pid": self.pid, "serves": list(self.serves), "shard": self.shard, "shards": self.shards})

    @classmethod
    def from_json(cls, data: str | bytes) -> AdmissionReady:
        r, d = "admission ready", _doc(data, "admission ready")
        serves = _get(d, r, "serves", list)
        if not all(isinstance(v, str) for v in serves):
            raise RecordError(f"{r}.serves: expected a list of VN names")
        return cls(pid=_get(d, r, "pid", int), serves=tuple(serves), shard=_get(d, r, "shard", int, 0),
                   shards=_get(d, r, "shards", int, 1))


# -- /tenet/hosts/<host>/revoke/<vn>/<mac> -------------------------------------------------
@dataclass(frozen=True)
class Revocation:
    """The operator (or a tenant) asks the host's NVE to end a TES's session (`tenet detach`).
    `vn` is the VN of that session: tenants reuse MACs, so another tenant's TES with the same MAC
    on the same host keeps its session. "" (a request written before the VN was recorded) ends
    the MAC's session in every VN, as such a request always did."""

    why: str = "revoked by the operator"
    vn: str = ""

    def to_json(self) -> bytes:
        return _dumps({"why": self.why, **({"vn": self.vn} if self.vn else {})})

    @classmethod
    def from_json(cls, data: str | bytes) -> Revocation:
        d = _doc(data, "revocation")
        return cls(_get(d, "revocation", "why", str, cls.why), _get(d, "revocation", "vn", str, ""))


# -- /tenet/hosts/<proxy>/proxy -----------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class ProxyPort:
    """One VM port of an 802.1X proxy host: the VM's MAC and VN, and how it joins — with the
    identity and password the host vouches with, or by MAC (MAB: neither)."""

    port: str
    mac: str
    vn: str
    mab: bool = False
    identity: str = ""
    password: str = ""
    method: str = "md5"  # the EAP method the host speaks for the VM: md5, peap or ttls (a password each)

    def __post_init__(self) -> None:
        if self.method not in ("md5", "peap", "ttls"):
            raise RecordError(f"proxy port.{self.port}: method {self.method!r} is not md5, peap or ttls")
        if self.mab and (self.identity or self.password):
            raise RecordError(f"proxy port.{self.port}: MAB carries no identity or password")
        if not self.mab and not (self.identity and self.password):
            raise RecordError(f"proxy port.{self.port}: 802.1X needs an identity and a password")


@dataclass(frozen=True)
class ProxyPorts:
    """What the controller publishes for an 802.1X proxy host: only its own VMs' ports, so a
    host never reads the intent (every other VM's password)."""

    ports: tuple[ProxyPort, ...] = ()

    def to_json(self) -> bytes:
        return _dumps({"ports": [{"port": p.port, "mac": p.mac, "vn": p.vn, "mab": p.mab, "identity": p.identity,
                                  "password": p.password, **({"method": p.method} if p.method != "md5" else {})}
                                 for p in sorted(self.ports, key=lambda p: p.port)]})

    @classmethod
    def from_json(cls, data: str | bytes) -> ProxyPorts:
        r, d = "proxy ports", _doc(data, "proxy ports")
        out = []
        for i, p in enumerate(_get(d, r, "ports", list)):
            if not isinstance(p, dict):
                raise RecordError(f"{r}.ports[{i}]: expected an object")
            f = f"{r}.ports[{i}]"
            out.append(ProxyPort(port=_get(p, f, "port", str), mac=_get(p, f, "mac", str), vn=_get(p, f, "vn", str),
                                 mab=_get(p, f, "mab", bool, False), identity=_get(p, f, "identity", str, ""),
                                 password=_get(p, f, "password", str, ""), method=_get(p, f, "method", str, "md5")))
        return cls(tuple(sorted(out, key=lambda p: p.port)))


# -- /tenet/endpoints/<host>/<vn>/<mac> ----------------------------------------------------
class EndpointKind(str, Enum):
    """How the TES was admitted: NVO3 discovery (a session), or 802.1X on a switch port."""

    NVO3 = "nvo3"
    DOT1X = "8021x"


@dataclass(frozen=True)
class ReportedTunnel:
    """An L3-attached TES's access tunnel: the TES's IP, its session's VNI, the NVE's UDP port."""

    remote: str
    vni: int
    udp_port: int


@dataclass(frozen=True, kw_only=True)
class EndpointReport:
    """A TES an NVE admitted: where (host, port), into which VN, as whom, with what RADIUS granted.
    `channel` is the L3 transport's session channel (udp:IP:PORT) when the TES came over UDP."""

    vn: str
    vnid: int
    mac: str
    port: str
    host: str
    session: int = 0
    identity: str = ""
    ip: str = ""
    kind: EndpointKind = EndpointKind.NVO3
    provisioning: Provisioning | None = None
    channel: str = ""
    tunnel: ReportedTunnel | None = None

    def to_dict(self) -> dict:
        """The JSON form (also what `tenet endpoints --json` prints)."""
        d: dict = {"vn": self.vn, "vnid": self.vnid, "mac": self.mac, "port": self.port, "host": self.host,
                   "session": self.session, "identity": self.identity, "ip": self.ip, "kind": self.kind.value,
                   "provisioning": dict(vars(self.provisioning)) if self.provisioning else None}  # flat: asdict's deep copy costs
        if self.channel:
            d["channel"] = self.channel
        if self.tunnel:
            d["tunnel"] = {"remote": self.tunnel.remote, "vni": self.tunnel.vni, "udp_port": self.tunnel.udp_port}
        return d

    def to_json(self) -> bytes:
        return _dumps(self.to_dict())

    @classmethod
    def from_json(cls, data: str | bytes) -> EndpointReport:
        return cls.from_dict(_doc(data, "endpoint report"))

    @classmethod
    def from_dict(cls, d: Mapping) -> EndpointReport:
        """Reports written before `kind` existed are NVO3's; provisioning may name its down
        rate `rate_bps` (before rates had two directions)."""
        r = "endpoint report"
        kind = _get(d, r, "kind", str, EndpointKind.NVO3.value)
        try:
            k = EndpointKind(kind)
        except ValueError:
            raise RecordError(f"{r}.kind: {kind!r} is none of {', '.join(k.value for k in EndpointKind)}") from None
        prov = _get(d, r, "provisioning", (dict, type(None)), None)
        try:
            provisioning = Provisioning.from_dict(prov) if prov else None
        except TypeError as e:
            raise RecordError(f"{r}.provisioning: {e}") from None
        t = _get(d, r, "tunnel", (dict, type(None)), None)
        rt = f"{r}.tunnel"
        tunnel = ReportedTunnel(_get(t, rt, "remote", str), _get(t, rt, "vni", int), _get(t, rt, "udp_port", int)) if t else None
        return cls(vn=_get(d, r, "vn", str), vnid=_get(d, r, "vnid", int), mac=_get(d, r, "mac", str), port=_get(d, r, "port", str),
                   host=_get(d, r, "host", str), session=_get(d, r, "session", int, 0),
                   identity=_get(d, r, "identity", str, ""), ip=_get(d, r, "ip", (str, type(None)), "") or "",
                   kind=k, provisioning=provisioning, channel=_get(d, r, "channel", str, ""), tunnel=tunnel)


# -- /tenet/alloc/extmac/<vn>/<vm>/<nic> ---------------------------------------------------
@dataclass(frozen=True)
class ExtMac:
    """The external MAC the controller allocated to a NIC (stable while the VM keeps it)."""

    mac: str

    def to_json(self) -> bytes:
        return json.dumps(self.mac).encode()

    @classmethod
    def from_json(cls, data: str | bytes) -> ExtMac:
        """A JSON string; earlier controllers stored the bare MAC text."""
        try:
            text = data.decode() if isinstance(data, bytes) else data
        except UnicodeDecodeError as e:
            raise RecordError(f"external MAC: not UTF-8: {e}") from None
        if not text.startswith('"'):
            mac = text
        else:
            try:
                mac = json.loads(text)
            except ValueError as e:
                raise RecordError(f"external MAC: not JSON: {e}") from None
        if not isinstance(mac, str) or not _MAC.match(mac):
            raise RecordError(f"external MAC.mac: {text!r} is not a MAC address")
        return cls(mac)


# -- /tenet/controller/leader -------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Leader:
    """The controller replica that leads: its name, process and since when (wall clock, for
    operators). Put under its lease, so it goes when the replica stops renewing; the key's
    create revision is the term that fences its writes (controller/fence.py)."""

    name: str
    pid: int
    since: float

    def to_json(self) -> bytes:
        return _dumps({"name": self.name, "pid": self.pid, "since": self.since})

    @classmethod
    def from_json(cls, data: str | bytes) -> Leader:
        r, d = "leader", _doc(data, "leader")
        return cls(name=_get(d, r, "name", str), pid=_get(d, r, "pid", int), since=float(_get(d, r, "since", (int, float))))


# -- /tenet/hosts/<host>/tables and /tenet/servable -----------------------------------------
@dataclass(frozen=True)
class VnDigest:
    """One VN table of a host, by the digest of its stored value (/tables/<vn>)."""

    vn: str
    digest: str


@dataclass(frozen=True, kw_only=True)
class TablesHead:
    """What a host's tables hold besides the VN tables, and which VN tables, by digest: a
    reader that finds a stored VN table with another digest has read mid-publish and waits
    for the rest (store/published.py). `content_hash` covers all of it, generation aside."""

    host: str
    underlay_ip: str
    uplink: str
    role: str = "hypervisor"
    capability: int = 0
    mab: bool = False
    qos: UplinkQos | None = None
    vns: tuple[VnDigest, ...] = ()
    generation: int = 0
    content_hash: str = ""

    def to_json(self) -> bytes:
        q = self.qos
        return _dumps({"host": self.host, "underlay_ip": self.underlay_ip, "uplink": self.uplink, "role": self.role,
                       "capability": self.capability, "mab": self.mab, "generation": self.generation,
                       "content_hash": self.content_hash, "vns": [[v.vn, v.digest] for v in self.vns],
                       "qos": None if q is None else {"capacity_bps": q.capacity_bps, "default_rate_bps": q.default_rate_bps,
                                                      "classes": [{**vars(c), "ports": list(c.ports)} for c in q.classes]}})

    @classmethod
    def from_json(cls, data: str | bytes) -> TablesHead:
        r, d = "tables head", _doc(data, "tables head")
        vns = _get(d, r, "vns", list)
        if not all(isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v) for v in vns):
            raise RecordError(f"{r}.vns: expected a list of [VN, digest] pairs")
        q = _get(d, r, "qos", (dict, type(None)), None)
        try:
            qos = None if q is None else UplinkQos(q["capacity_bps"], q["default_rate_bps"], tuple(
                LinkClass(**{**c, "ports": tuple(c["ports"])}) for c in q["classes"]))
        except (KeyError, TypeError) as e:
            raise RecordError(f"{r}.qos: {e}") from None
        return cls(host=_get(d, r, "host", str), underlay_ip=_get(d, r, "underlay_ip", str), uplink=_get(d, r, "uplink", str),
                   role=_get(d, r, "role", str, "hypervisor"), capability=_get(d, r, "capability", int, 0),
                   mab=_get(d, r, "mab", bool, False), qos=qos, vns=tuple(VnDigest(v, h) for v, h in vns),
                   generation=_get(d, r, "generation", int), content_hash=_get(d, r, "content_hash", str, ""))


@dataclass(frozen=True)
class Servables:
    """The VNs any NVE may offer a discovering TES: once for the fabric, not in every host's tables."""

    vns: tuple[Servable, ...]

    def to_json(self) -> bytes:
        return _dumps({"vns": [[s.vn, s.vnid] for s in self.vns]})

    @classmethod
    def from_json(cls, data: str | bytes) -> Servables:
        vns = _get(_doc(data, "servable"), "servable", "vns", list)
        if not all(isinstance(v, list) and len(v) == 2 and isinstance(v[0], str) and isinstance(v[1], int) for v in vns):
            raise RecordError("servable.vns: expected a list of [VN, VN-ID] pairs")
        return cls(tuple(Servable(v, i) for v, i in vns))


# -- /tenet/controller/observed -----------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Observed:
    """The leader's promise: every input written up to `revision` is reflected in the
    published tables (controller/observed.py says when it is written and how to read it)."""

    revision: int
    leader: str

    def to_json(self) -> bytes:
        return _dumps({"revision": self.revision, "leader": self.leader})

    @classmethod
    def from_json(cls, data: str | bytes) -> Observed:
        r, d = "observed", _doc(data, "observed")
        return cls(revision=_get(d, r, "revision", int), leader=_get(d, r, "leader", str))


# -- /tenet/chassis/<host> and /tenet/alive/<host> ----------------------------------------
class HostRole(str, Enum):
    """What kind of NVE a registering host is (what a discovering TES selects by)."""

    HYPERVISOR = "hypervisor"
    ACCESS_SWITCH = "access-switch"
    ROUTER = "router"  # an NVE in a router (the seed's third kind of host)


@dataclass(frozen=True, kw_only=True)
class Chassis:
    """A host's registration, written by its own agent from its config file and its uplink
    (like OVN's Chassis or Calico's Node): permanent, so a host that went down is still known
    — its liveness is the separate Alive key under the agent's lease."""

    host: str
    network: str  # the physical network its uplink is on
    address: str  # its uplink's IPv4 address with prefix length, as the kernel has it
    uplink: str
    role: HostRole = HostRole.HYPERVISOR
    capability: int = 100
    admission_shards: int = 1
    authenticator: bool = False  # an 802.1X authenticator (the fabric's `switches:`): hosts behind its ports vouch for their VMs
    mab: bool = False  # an authenticator: MAC Authentication Bypass

    def to_json(self) -> bytes:
        return _dumps({"host": self.host, "network": self.network, "address": self.address, "uplink": self.uplink,
                       "role": self.role.value, "capability": self.capability,
                       "admission_shards": self.admission_shards, "authenticator": self.authenticator, "mab": self.mab})

    @classmethod
    def from_json(cls, data: str | bytes) -> Chassis:
        r, d = "chassis", _doc(data, "chassis")
        role = _get(d, r, "role", str, HostRole.HYPERVISOR.value)
        try:
            hr = HostRole(role)
        except ValueError:
            raise RecordError(f"{r}.role: {role!r} is none of {', '.join(x.value for x in HostRole)}") from None
        return cls(host=_get(d, r, "host", str), network=_get(d, r, "network", str), address=_get(d, r, "address", str),
                   uplink=_get(d, r, "uplink", str), role=hr, capability=_get(d, r, "capability", int, 100),
                   admission_shards=_get(d, r, "admission_shards", int, 1),
                   authenticator=_get(d, r, "authenticator", bool, False), mab=_get(d, r, "mab", bool, False))

    def fabric_entry(self) -> tuple[str, dict]:
        """Where it goes in the fabric document and what it says there (the loader's form)."""
        ip = self.address.split("/")[0]
        if self.authenticator:
            return "switches", {"network": self.network, "ip": ip, "capability": self.capability, "mab": self.mab,
                                "admission_shards": self.admission_shards, "uplink": self.uplink}
        return "hosts", {"network": self.network, "ip": ip, "role": self.role.value, "capability": self.capability,
                         "admission_shards": self.admission_shards, "uplink": self.uplink}


@dataclass(frozen=True, kw_only=True)
class Alive:
    """The agent serving a host is alive: put under its lease, gone when the lease lapses."""

    pid: int
    since: float  # wall-clock time the agent registered
    lease: int = 0  # the lease it renews: its renewals are the agent's heartbeat (lab/liveness.py)

    def to_json(self) -> bytes:
        return _dumps({"pid": self.pid, "since": self.since, **({"lease": self.lease} if self.lease else {})})

    @classmethod
    def from_json(cls, data: str | bytes) -> Alive:
        r, d = "alive", _doc(data, "alive")
        return cls(pid=_get(d, r, "pid", int), since=float(_get(d, r, "since", (int, float))),
                   lease=_get(d, r, "lease", int, 0))


# -- /tenet/fabric and /tenet/tenancy ------------------------------------------------------
def fabric_to_json(intent: Intent) -> bytes:
    """The fabric part of the intent's canonical document (model/parts.py)."""
    return json.dumps(split(intent_to_doc(intent))[0]).encode()


def tenancy_to_json(intent: Intent) -> bytes:
    """The tenancy part of the intent's canonical document (model/parts.py)."""
    return json.dumps(split(intent_to_doc(intent))[1]).encode()


def part_from_json(data: str | bytes, part: str) -> dict:
    """A stored part, unvalidated: what an edit changes before the loader checks it."""
    return _doc(data, part)
