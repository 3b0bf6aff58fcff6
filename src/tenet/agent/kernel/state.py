"""The slice of a host's kernel that the agent owns, as plain values.

Desired state is computed from the tables; actual state is observed from the kernel; both
have this shape, so reconciliation is a pure diff.
"""
from __future__ import annotations

from dataclasses import dataclass

OWN_PREFIX = "tn"  # every link the agent creates starts with this; VM ports do not


@dataclass(frozen=True)
class Vxlan:
    vni: int
    local: str
    group: str  # "" for unicast/replication
    port: int = 4789
    ttl: int = 16
    dev: str = ""  # the device it sends through: the uplink for a group, a carrier for a layered VN


@dataclass(frozen=True)
class Link:
    """A link the agent creates: a VN bridge, a VXLAN device, or one end of the translation veth."""

    name: str
    kind: str  # bridge | vxlan | veth
    master: str = ""
    peer: str = ""  # veth only: the other end's name
    vxlan: Vxlan | None = None
    mtu: int = 0  # 0 = kernel default
    peer_mac: str = ""  # veth only, a carrier's (model/layers.py): the MAC its peer is created with


@dataclass(frozen=True)
class Address:
    """An IPv4 address on one of our links: a host's carrier address on a lower VN."""

    dev: str
    cidr: str


@dataclass(frozen=True)
class BridgeFdb:
    """Static bridge entry: frames to `mac` leave by `port` (a VXLAN or translation port)."""

    port: str
    mac: str


@dataclass(frozen=True)
class VxlanFdb:
    """VXLAN entry: frames to `mac` (00:00:00:00:00:00 = flood) go to underlay IP `dst`."""

    dev: str
    mac: str
    dst: str


@dataclass(frozen=True)
class Shaper:
    """A token bucket (tc tbf) as the root qdisc of a device. On a TES's port it shapes what the
    NVE sends to the TES (WISPr-Bandwidth-Max-Down); on the port's stage (tnu…, see
    rates.Stage) what the TES sends (WISPr-Bandwidth-Max-Up)."""

    port: str
    rate_bps: int


@dataclass(frozen=True)
class MacClass:
    """A rate limit for one MAC on an access switch's port: an HTB class, which nftables steers
    that MAC's frames into (meta priority). Toward the MAC: 7e02:<minor> on the port itself;
    from it: 7e04:<minor> on the port's stage (tnu…, see rates.Stage)."""

    port: str
    minor: int
    rate_bps: int


@dataclass(frozen=True)
class UplinkClass:
    """One HTB class under the uplink's root 7e03: (compute/qos.py): minor 1 is the physical
    link's capacity, 0xffff the default, others a virtual link's guarantee (rate) and limit (ceil)."""

    dev: str
    minor: int
    rate_bps: int
    ceil_bps: int


@dataclass(frozen=True)
class KernelState:
    links: frozenset[Link]
    attachments: frozenset[tuple[str, str]]  # (VM port, bridge)
    bridge_fdb: frozenset[BridgeFdb]
    vxlan_fdb: frozenset[VxlanFdb]
    nft_hash: str  # digest of the translation ruleset; "" = no table
    nft_text: str = ""  # the ruleset itself (desired side only)
    missing_ports: frozenset[str] = frozenset()  # desired VM ports not present (yet)
    shapers: frozenset[Shaper] = frozenset()
    mac_classes: frozenset[MacClass] = frozenset()
    uplink_classes: frozenset[UplinkClass] = frozenset()
    addresses: frozenset[Address] = frozenset()
    expected_ports: frozenset[str] = frozenset()  # a live migration's ports, here before or after they are

    @staticmethod
    def empty() -> "KernelState":
        return KernelState(frozenset(), frozenset(), frozenset(), frozenset(), "")
