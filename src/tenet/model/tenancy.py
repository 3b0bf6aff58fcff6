"""The tenant side: virtual networks and the VMs attached to them.

MACs and IPs are unique only within a VN: tenants may reuse them across VNs.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Interface, IPv6Network
from typing import Union

from tenet.model.capacity import DEFAULT_SIZE, Size


class Bum(str, Enum):
    """How broadcast, unknown unicast and multicast leave a host."""

    MULTICAST = "multicast"
    REPLICATE = "replicate"


@dataclass(frozen=True)
class VirtualNetwork:
    name: str
    vnid: int  # 24-bit; also the VXLAN VNI
    tenant: str
    subnet: IPv4Network | None
    bum: Bum
    group: IPv4Address | None  # the VN's multicast group when bum is MULTICAST
    forwarding: str = "mac"  # "mac" (bridged, default) or "ip" (routed, aggregated tables)
    over: str = ""  # the VN it is layered over (model/layers.py); "" = over the underlay
    subnet6: IPv6Network | None = None  # its IPv6 prefix, if declared: NICs' ip6 must lie in it


class Join(str, Enum):
    """How a NIC gets onto its VN: declared to the controller, or by NVO3 auto-attachment."""

    STATIC = "static"
    DISCOVER = "discover"
    DOT1X = "8021x"  # behind an access switch: the host authenticates the VM's MAC with its secret
    MAB = "mab"  # behind an access switch: by MAC alone, if the switch allows it


class EapMethod(str, Enum):
    """How a supplicant proves who it is (docs/aaa.md). MD5: a password, no proof of the
    server, no keys, and one captured exchange falls to a dictionary attack — kept for what
    already uses it. TLS: a client certificate. PEAP (MSCHAPv2) and TTLS (PAP): a password,
    inside a TLS tunnel that proves the server first."""

    MD5 = "md5"
    TLS = "tls"
    PEAP = "peap"
    TTLS = "ttls"

    @property
    def needs_password(self) -> bool:
        return self is not EapMethod.TLS


@dataclass(frozen=True)
class Nic:
    network: str  # VN name
    mac: str  # internal MAC, lower-case colon form
    ip: IPv4Interface | None
    join: Join = Join.STATIC
    identity: str = ""  # credentials of a discovering TES (lab only: the TES holds them)
    password: str = ""
    nves: tuple[str, ...] = ()  # more NVEs on the TES's access LAN (the VM's host is always one)
    gateway: IPv4Address | None = None  # the VM's default route (e.g. a virtual router on its VN)
    ip6: tuple[IPv6Interface, ...] = ()  # IPv6 addresses beside `ip` (dual stack); MAC-based VNs only
    allowed: tuple[Union[IPv4Network, IPv6Network], ...] = ()  # more sources it may send from (a VIP, routed prefixes)
    port_security: bool = True  # its host lets it send only from its MAC and addresses (docs/security.md)
    method: EapMethod = EapMethod.MD5  # join 8021x/discover: the EAP method its supplicant speaks


class VmState(str, Enum):
    """A VM's power state (seed 001's primitives): only a running VM has forwarding entries;
    a paused one keeps everything but its processes run no more, a stopped one has its NICs down."""

    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Vm:
    name: str
    host: str
    nics: tuple[Nic, ...]
    router: bool = False  # a virtual router (model/overlay.py): it forwards between its NICs
    state: VmState = VmState.RUNNING
    migrating_to: str = ""  # a live migration under way: the host it is arriving on (both serve it)
    size: Size = DEFAULT_SIZE  # what it takes of its host's capacity (model/capacity.py)


@dataclass(frozen=True)
class Server:
    """A physical TES with no NVE of its own, in one of two places. Behind an L3 hop: an
    underlay address on `uplink`; it attaches its one NIC by NVO3 over UDP and reaches its NVE
    through a VXLAN access tunnel. On an access switch's port (`switch`): no underlay address,
    its one NIC cabled to the port; its own 802.1X supplicant authenticates it and the switch
    puts its MAC where RADIUS says (the NIC's `network` is what it expects, not an order)."""

    name: str
    uplink: str  # physical network ("" on a switch port)
    address: IPv4Interface | None  # underlay address (None on a switch port)
    nic: Nic  # join: discover, `nves` the NVEs it sends DISCOVER to (none: broadcast); or 8021x on a switch
    switch: str = ""  # the access switch whose port it is cabled to

    @property
    def on_switch(self) -> bool:
        return bool(self.switch)


@dataclass(frozen=True)
class AaaUser:
    """A RADIUS user the lab's FreeRADIUS knows: its Access-Accept carries the VN and limits."""

    name: str
    password: str
    network: str  # VN name
    rate: str = ""  # e.g. "50mbit", both directions; "" = unlimited
    session_timeout: int = 0  # seconds; 0 = none
    ip: IPv4Interface | None = None  # handed to the TES as Framed-IP-Address/-Netmask
    cos: int | None = None  # 802.1p class of service 0..7, as RFC 4675 User-Priority-Table
    rate_up: str = ""  # from the TES into the network only (never together with `rate`)
    rate_down: str = ""  # toward the TES only
    method: EapMethod = EapMethod.MD5  # the one EAP method the server lets this user authenticate with
    interim: int = 0  # Acct-Interim-Interval, seconds between accounting interim updates; 0 = the NVE's own

    @property
    def limit_up(self) -> str:
        """WISPr-Bandwidth-Max-Up: what the TES may send ("" = unlimited)."""
        return self.rate_up or self.rate

    @property
    def limit_down(self) -> str:
        """WISPr-Bandwidth-Max-Down: what the NVE sends toward the TES ("" = unlimited)."""
        return self.rate_down or self.rate


@dataclass(frozen=True)
class AaaServer:
    """One of the RADIUS servers the NVEs ask, primary first (the lab runs a FreeRADIUS per server)."""

    name: str
    network: str  # the physical network it sits on


@dataclass(frozen=True)
class Intent:
    """Everything the operator declared, complete and validated."""

    name: str
    fabric: "Fabric"
    tenants: tuple[str, ...]
    vns: tuple[VirtualNetwork, ...]
    vms: tuple[Vm, ...]
    aaa: tuple[AaaUser, ...] = ()
    servers: tuple[Server, ...] = ()
    vrouters: tuple["VirtualRouter", ...] = ()
    vlinks: tuple["VirtualLink", ...] = ()
    aaa_servers: tuple[AaaServer, ...] = ()  # with users: at least one

    def vn(self, name: str) -> VirtualNetwork:
        return next(v for v in self.vns if v.name == name)


def port_name(vm: str, nic_index: int) -> str:
    """Host-side interface name of a VM NIC: stable, unique per host, within IFNAMSIZ."""
    digest = hashlib.sha1(f"{vm}/{nic_index}".encode()).hexdigest()[:10]
    return f"tp{digest}"


def switch_port_name(host: str) -> str:
    """The access switch's port toward a host behind it (many VMs' MACs arrive there)."""
    return "ts" + hashlib.sha1(f"switchport/{host}".encode()).hexdigest()[:10]


def group_for(vnid: int) -> IPv4Address:
    """Default per-VN multicast group: the VN-ID fills the low 24 bits of 239.0.0.0/8."""
    return IPv4Address((239 << 24) | (vnid & 0xFFFFFF))


from tenet.model.fabric import Fabric  # noqa: E402  (type used in annotations above)
from tenet.model.overlay import VirtualLink, VirtualRouter  # noqa: E402,F401
