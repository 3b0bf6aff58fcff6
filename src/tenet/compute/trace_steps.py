"""The steps of a trace (compute/trace.py), typed, and their one-line text. Pure."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum
from typing import Union

from tenet.agent.translation import VXLAN_PORT
from tenet.compute.tables import Function


class DropReason(str, Enum):
    NOT_ATTACHED = "source not attached"
    SELF = "destination is the source"
    UNRESOLVED = "address not resolved"
    OTHER_VN = "destination in another VN"
    NO_ENTRY = "no entry for the destination"
    NO_HOST = "no host at that address"
    CONFLICT = "address claimed twice"
    NO_VNI = "no VN with that VNI"
    UNKNOWN_SOURCE = "source not a known peer"
    NOT_LOCAL = "destination not local"
    NO_ROUTE = "no route"
    NO_BROADCAST = "no broadcast in an IP-based VN"


@dataclass(frozen=True)
class Source:
    """The port the frame enters by: a NIC's host-side port on the NVE that serves it."""

    vm: str
    nic: int
    mac: str
    vn: str
    vnid: int
    host: str  # "" when no host's tables have it
    port: str
    forwarding: str = "mac"


@dataclass(frozen=True)
class Resolve:
    """An IP destination, resolved to the MAC the source's ARP learns (bridged VNs), or the
    MAC destination of a routed VN resolved to its host route's IP."""

    address: str
    to: str
    vn: str
    by: str


@dataclass(frozen=True)
class Lookup:
    """The addressing function the source host's table chose for the destination."""

    host: str
    vn: str
    destination: str  # MAC, IP (routed) or "broadcast"
    function: Function
    address: str  # the table's third column (routed: the next NVE's underlay IP or the TES's MAC)
    prefix: str = ""  # routed: the matching route
    note: str = ""
    unknown: bool = False  # no row serves it: the bridge floods it as unknown unicast


@dataclass(frozen=True)
class Rewrite:
    """MACs rewritten in the kernel (nftables): translation's external MACs, routing's router MACs."""

    host: str
    src: str
    src_to: str
    dst: str
    dst_to: str
    out: str  # the device it is forwarded to


@dataclass(frozen=True)
class Encapsulate:
    """The VXLAN header the source host's VXLAN device puts on the frame."""

    host: str
    device: str
    vni: int
    outer_src: str
    outer_dst: str  # a peer's underlay (or carrier) IP, or the group
    udp_port: int = VXLAN_PORT
    group: str = ""  # multicast: the group the outer destination is
    over: str = ""  # a layered VN: the lower VN whose table carries the outer packet in turn


@dataclass(frozen=True)
class Arrive:
    """The far end's reverse table takes the frame back into a VN."""

    host: str
    vn: str
    vnid: int
    by: str  # "vni 5101", "external MAC …", "router MAC …"


@dataclass(frozen=True)
class Deliver:
    host: str
    vn: str
    vnid: int
    port: str
    mac: str  # the destination row's MAC
    vm: str
    src: str  # the frame's MACs as the port sends it
    dst: str


@dataclass(frozen=True)
class Drop:
    host: str
    reason: DropReason
    detail: str


Step = Union[Source, Resolve, Lookup, Rewrite, Encapsulate, Arrive, Deliver, Drop]
KIND = {Source: "source", Resolve: "resolve", Lookup: "lookup", Rewrite: "rewrite", Encapsulate: "encapsulate",
        Arrive: "arrive", Deliver: "deliver", Drop: "drop"}


@dataclass(frozen=True)
class Trace:
    destination: str
    steps: tuple[Step, ...]

    @property
    def deliveries(self) -> tuple[Deliver, ...]:
        return tuple(s for s in self.steps if isinstance(s, Deliver))

    @property
    def drops(self) -> tuple[Drop, ...]:
        return tuple(s for s in self.steps if isinstance(s, Drop))

    def to_dict(self) -> dict:
        return {"destination": self.destination, "steps": [step_dict(s) for s in self.steps]}


def step_dict(s: Step) -> dict:
    d = {"step": KIND[type(s)], **asdict(s)}
    return {k: (v.value if isinstance(v, Enum) else v) for k, v in d.items()}


def describe(s: Step) -> str:
    """One line per step, as `tenet trace` prints it."""
    if isinstance(s, Source):
        at = f"port {s.port} on {s.host}" if s.port else f"not attached ({s.host or 'no host'})"
        return f"{s.vm} NIC {s.nic} ({s.mac}), {at} · VN {s.vn} (VNI {s.vnid})"
    if isinstance(s, Resolve):
        return f"{s.address} is {s.to} in VN {s.vn} ({s.by})"
    if isinstance(s, Lookup):
        via = f" (route {s.prefix})" if s.prefix else ""
        note = f" — {s.note}" if s.note else ""
        return f"{s.host}: {s.destination} → {s.function.value} {s.address}{via}{note}"
    if isinstance(s, Rewrite):
        src = f"src {s.src} → {s.src_to}, " if s.src else ""
        dst = f"dst {s.dst} → {s.dst_to}" if s.dst else f"dst → {s.dst_to}"
        return f"{s.host}: {src}{dst}, out {s.out}"
    if isinstance(s, Encapsulate):
        group = f" (group {s.group})" if s.group else ""
        over = f", carried by VN {s.over}" if s.over else ""
        return f"{s.host}: VXLAN VNI {s.vni} {s.outer_src} → {s.outer_dst}{group} UDP {s.udp_port} via {s.device}{over}"
    if isinstance(s, Arrive):
        return f"{s.host}: {s.by} → VN {s.vn} (VNI {s.vnid})"
    if isinstance(s, Deliver):
        return f"{s.host}: delivered on port {s.port} to {s.vm or s.mac} ({s.mac}) in VN {s.vn}, src {s.src}"
    return f"{s.host or '-'}: dropped — {s.reason.value}: {s.detail}"
