"""The addressing mode table (seed 002, FIGS. 7A/7B) and its reverse, as published per host.

A host's tables are full level state: the agent never needs an earlier version to apply one.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Callable, TypeVar

from tenet.compute.endpoints import Tunnel
from tenet.compute.port_security import Guard
from tenet.compute.qos import LinkClass, UplinkQos
from tenet.compute.routing import Route
from tenet.model.layers import Carrier

BROADCAST = "broadcast"
T = TypeVar("T")


class Function(str, Enum):
    """The four addressing functions of the seed design (BUM split by mode)."""

    NO_MODIFICATION = "no modification"
    TRANSLATE_L2 = "translate L2"
    ENCAPSULATE = "encapsulate"
    MULTICAST = "multicast"
    REPLICATE = "replicate"


@dataclass(frozen=True)
class Entry:
    """One row: where a destination of the VN is and how to get a frame there.

    `address` is what the seed's third column shows: the internal MAC (local), the external
    MAC (translate), the peer's underlay IP (encapsulate), the group (multicast) or the
    space-separated peer IPs (replicate).
    """

    destination: str  # internal MAC, or BROADCAST
    function: Function
    address: str
    vm: str = ""
    port: str = ""  # host-side interface of a local VM NIC
    peers: tuple[str, ...] = ()  # underlay IPs for replication
    rate_down_bps: int = 0  # local rows: the limit toward that TES from its Access-Accept (0: none)
    rate_up_bps: int = 0  # local rows: the limit on what that TES sends (0: none)
    cos: int = 0  # local rows: its class of service, marked as DSCP CS<cos> on its IPv4 frames
    guard: Guard = Guard.ON  # local rows: how its port is checked (compute/port_security.py)
    sources: tuple[str, ...] = ()  # local rows: the addresses and prefixes it may send from (none: any)


@dataclass(frozen=True)
class ReverseEntry:
    """Maps an arrival back to the VN: an external MAC (translated frames) or a VNI."""

    arrival: str  # external MAC, or "vni <n>"
    internal: str  # internal MAC; "" for a VNI row
    local: bool  # the external MAC belongs to a VM on this host (a destination)


@dataclass(frozen=True)
class VnTable:
    vn: str
    vnid: int
    bum: str
    group: str  # "" unless bum is multicast
    entries: tuple[Entry, ...]
    reverse: tuple[ReverseEntry, ...]
    forwarding: str = "mac"
    routes: tuple[Route, ...] = ()  # IP-based VNs: the per-VN routing table
    router_mac: str = ""  # IP-based VNs: this NVE's MAC toward other NVEs
    tunnels: tuple[Tunnel, ...] = ()  # ports of local TESs attached over L3, which this NVE creates
    gateway: str = ""  # IP-based VNs: "<anycast gateway IP> <MAC>"
    layer: int = 0  # VNs beneath this one (model/layers.py): each costs its VXLAN overhead
    carrier: Carrier | None = None  # a layered VN: this host's presence on the VN beneath
    # The underlay addresses of every host implementing the VN, this one included (one tuple
    # shared by all of them): the only sources its VXLAN is accepted from (agent/underlay_guard.py).
    # Empty: a layered VN (its peers are carriers), or published before this field existed.
    underlay_peers: tuple[str, ...] = ()

    def rows(self, function: Function) -> tuple[Entry, ...]:
        return tuple(e for e in self.entries if e.function is function)


@dataclass(frozen=True)
class Servable:
    """A VN this NVE may offer to a discovering TES."""

    vn: str
    vnid: int


@dataclass(frozen=True)
class HostTables:
    host: str
    underlay_ip: str
    uplink: str
    vns: tuple[VnTable, ...]
    serves: tuple[Servable, ...] = ()
    role: str = "hypervisor"
    capability: int = 0
    mab: bool = False  # an access switch that admits MACs speaking no EAPOL by MAC (MAB)
    qos: UplinkQos | None = None  # the uplink's share among virtual links (compute/qos.py)
    generation: int = 0
    content_hash: str = field(default="", compare=False)

    def vn(self, name: str) -> VnTable | None:
        return next((t for t in self.vns if t.vn == name), None)

    def to_json(self) -> bytes:
        """The stored value (store/records.py re-exports this record)."""
        return to_json(self).encode()

    @classmethod
    def from_json(cls, data: str | bytes) -> HostTables:
        return from_json(data)


class TablesError(ValueError):
    """A stored value that is not a host's tables: names the field."""


def to_json(tables: HostTables) -> str:
    return json.dumps(asdict(tables), sort_keys=True)


def from_json(text: str | bytes) -> HostTables:
    """ValueError (TablesError) naming the field when the text is not a host's tables."""
    return _decoded(text, "host tables", _from_doc)


def vn_to_json(table: VnTable) -> bytes:
    """One VN's table as stored on its own (store/published.py): the same JSON as within a
    host's document, built field by field (asdict's deep copy dominates at scale)."""
    return json.dumps(_vn_doc(table), sort_keys=True, separators=(",", ":")).encode()


def vn_from_json(data: str | bytes) -> VnTable:
    """ValueError (TablesError) naming the field when the text is not a VN's table."""
    return _decoded(data, "VN table", _vn_from_doc)


def _decoded(text: str | bytes, what: str, build: Callable[[dict], T]) -> T:
    try:
        return build(json.loads(text))
    except KeyError as e:
        raise TablesError(f"{what}: field {e} missing") from None
    except (TypeError, ValueError, AttributeError) as e:
        raise TablesError(f"{what}: {e}") from None


def _vn_doc(t: VnTable) -> dict:
    return {
        "vn": t.vn, "vnid": t.vnid, "bum": t.bum, "group": t.group, "forwarding": t.forwarding,
        "router_mac": t.router_mac, "gateway": t.gateway, "layer": t.layer,
        "entries": [{"destination": e.destination, "function": e.function.value, "address": e.address, "vm": e.vm,
                     "port": e.port, "peers": list(e.peers), "rate_down_bps": e.rate_down_bps,
                     "rate_up_bps": e.rate_up_bps, "cos": e.cos, **_guard_doc(e)} for e in t.entries],
        "reverse": [{"arrival": r.arrival, "internal": r.internal, "local": r.local} for r in t.reverse],
        "routes": [vars(r) for r in t.routes],
        "tunnels": [vars(x) for x in t.tunnels],
        "carrier": vars(t.carrier) if t.carrier else None,
        "underlay_peers": list(t.underlay_peers),
    }


def _vn_from_doc(v: dict) -> VnTable:
    return VnTable(
        vn=v["vn"],
        vnid=v["vnid"],
        bum=v["bum"],
        group=v["group"],
        entries=tuple(
            Entry(**{**_rates(e), "function": Function(e["function"]), "peers": tuple(e["peers"]),
                     "guard": Guard(e.get("guard", "on")), "sources": tuple(e.get("sources", ()))})
            for e in v["entries"]
        ),
        reverse=tuple(ReverseEntry(**r) for r in v["reverse"]),
        forwarding=v.get("forwarding", "mac"),
        routes=tuple(Route(**_rates(r)) for r in v.get("routes", ())),
        router_mac=v.get("router_mac", ""),
        gateway=v.get("gateway", ""),
        tunnels=tuple(Tunnel(**x) for x in v.get("tunnels", ())),
        layer=v.get("layer", 0),
        carrier=Carrier(**v["carrier"]) if v.get("carrier") else None,
        underlay_peers=tuple(v.get("underlay_peers", ())),
    )


def _from_doc(d: dict) -> HostTables:
    vns = tuple(_vn_from_doc(v) for v in d["vns"])
    return HostTables(
        host=d["host"],
        underlay_ip=d["underlay_ip"],
        uplink=d["uplink"],
        vns=vns,
        serves=tuple(Servable(**x) for x in d.get("serves", ())),
        role=d.get("role", "hypervisor"),
        capability=d.get("capability", 0),
        mab=d.get("mab", False),
        qos=_qos(d.get("qos")),
        generation=d["generation"],
        content_hash=d.get("content_hash", ""),
    )


def _guard_doc(e: Entry) -> dict:
    """Port security as stored: only where it says more than the default (most rows are
    remote ones, and at scale every byte of a VN's table is paid per host)."""
    d: dict = {}
    if e.guard is not Guard.ON:
        d["guard"] = e.guard.value
    if e.sources:
        d["sources"] = list(e.sources)
    return d


def _rates(row: dict) -> dict:
    """A row published before rates had two directions names the down rate `rate_bps`."""
    if "rate_bps" not in row:
        return row
    row = dict(row)
    row.setdefault("rate_down_bps", row.pop("rate_bps"))
    return row


def _qos(d: dict | None) -> UplinkQos | None:
    if d is None:
        return None
    classes = tuple(LinkClass(**{**c, "ports": tuple(c["ports"])}) for c in d["classes"])
    return UplinkQos(d["capacity_bps"], d["default_rate_bps"], classes)
