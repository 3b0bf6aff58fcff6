"""Level-triggered reconciliation: observe everything, diff, apply ordered idempotent ops.

Order matters for traffic: everything new is built and wired before anything old is removed,
and the translation ruleset is swapped atomically in between. A restart with unchanged tables
yields no ops at all, so it cannot disturb a packet.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, Union

from tenet.agent.kernel.state import Address, BridgeFdb, KernelState, Link, MacClass, Shaper, UplinkClass, VxlanFdb


@dataclass(frozen=True)
class AddLink:
    link: Link


@dataclass(frozen=True)
class DelLink:
    name: str


@dataclass(frozen=True)
class Attach:
    port: str
    bridge: str  # "" = detach


@dataclass(frozen=True)
class AddBridgeFdb:
    entry: BridgeFdb


@dataclass(frozen=True)
class DelBridgeFdb:
    entry: BridgeFdb


@dataclass(frozen=True)
class AddVxlanFdb:
    entry: VxlanFdb


@dataclass(frozen=True)
class DelVxlanFdb:
    entry: VxlanFdb


@dataclass(frozen=True)
class SetShaper:
    shaper: Shaper


@dataclass(frozen=True)
class ClearShaper:
    port: str


@dataclass(frozen=True)
class SetMacClass:
    cls: MacClass  # created, or its rate changed in place (the root qdisc is never re-added)


@dataclass(frozen=True)
class DelMacClass:
    port: str
    minor: int


@dataclass(frozen=True)
class SetUplinkClass:
    cls: UplinkClass  # created (with the root, if missing) or re-rated in place: never a new root


@dataclass(frozen=True)
class DelUplinkClass:
    dev: str
    minor: int  # 0: the root qdisc itself, once nothing on the uplink is shaped


@dataclass(frozen=True)
class AddAddress:
    address: Address


@dataclass(frozen=True)
class DelAddress:
    address: Address


@dataclass(frozen=True)
class SetRuleset:
    text: str  # "" = remove the table


Op = Union[AddLink, DelLink, Attach, AddBridgeFdb, DelBridgeFdb, AddVxlanFdb, DelVxlanFdb, SetRuleset, SetShaper,
           ClearShaper, SetMacClass, DelMacClass, SetUplinkClass, DelUplinkClass, AddAddress, DelAddress]


class Kernel(Protocol):
    """What the reconciler needs from a dataplane driver (netlink+nft, or the in-memory fake)."""

    def ports(self) -> frozenset[str]: ...
    def port_macs(self) -> dict[str, str]: ...
    def uplink_mtu(self, uplink: str) -> int: ...
    def observe(self, sections: frozenset[str] | None = None) -> KernelState: ...
    def apply(self, op: Op) -> None: ...


def _creates_pair(l: Link, want: dict[str, Link]) -> bool:
    """Which end of a desired veth pair is added (the kernel makes both): the bridge side, or
    for a pair with neither end in a bridge (a switch port's stage), the first name."""
    peer = want.get(l.peer)
    if l.master or peer is None:
        return True
    return not peer.master and l.name < peer.name


def diff(desired: KernelState, actual: KernelState) -> list[Op]:
    ops: list[Op] = []
    want = {l.name: l for l in desired.links}
    have = {l.name: l for l in actual.links}
    changed = {n for n in want.keys() & have.keys() if want[n] != have[n]}
    # A link whose fixed attributes differ (e.g. a VXLAN moved from group to replication)
    # must be rebuilt; peers of a changed veth go with it.
    for n in sorted(changed):
        if want[n].kind == "bridge" and have[n].kind == "bridge":
            continue
        ops.append(DelLink(n))
    rebuilt = {n for n in changed if not (want[n].kind == have[n].kind == "bridge")}
    order = {"bridge": 0, "veth": 1, "vxlan": 2}
    for l in sorted(desired.links, key=lambda l: (order[l.kind], l.name)):
        if l.name in have and l.name not in rebuilt:
            continue
        if l.kind == "veth" and not _creates_pair(l, want):
            continue  # created together with its peer
        ops.append(AddLink(l))
    # a rebuilt veth takes its peer (a carrier's addressed end) with it
    fresh = {n for n in want if n not in have} | rebuilt | {have[n].peer for n in rebuilt if have[n].kind == "veth"}
    for a in sorted(desired.addresses, key=lambda a: (a.dev, a.cidr)):
        if a not in actual.addresses or a.dev in fresh:
            ops.append(AddAddress(a))
    for sh in sorted(desired.shapers - actual.shapers, key=lambda s: s.port):
        ops.append(SetShaper(sh))  # before the ruleset: a TES is limited from its first frame
    for c in sorted(desired.mac_classes - actual.mac_classes, key=lambda c: (c.port, c.minor)):
        ops.append(SetMacClass(c))
    for u in sorted(desired.uplink_classes - actual.uplink_classes, key=lambda u: (u.dev, u.minor)):
        ops.append(SetUplinkClass(u))  # the parent (minor 1) first; classes before the marks
    if desired.nft_hash != actual.nft_hash:
        ops.append(SetRuleset(desired.nft_text))
    # The gate opens before the bridge takes a new port: a first frame to a translated peer
    # leaves by the ruleset alone, and one to a bridged peer in between is lost, never leaked.
    have_attach = dict(actual.attachments)
    for port, br in sorted(desired.attachments):
        if have_attach.get(port) != br:
            ops.append(Attach(port, br))
    for e in sorted(desired.bridge_fdb, key=lambda e: (e.port, e.mac)):  # a port's entries once it is in its bridge
        if e not in actual.bridge_fdb or e.port in fresh:
            ops.append(AddBridgeFdb(e))
    for e in sorted(desired.vxlan_fdb, key=lambda e: (e.dev, e.mac, e.dst)):
        if e not in actual.vxlan_fdb or e.dev in fresh:
            ops.append(AddVxlanFdb(e))
    for e in sorted(actual.bridge_fdb - desired.bridge_fdb, key=lambda e: (e.port, e.mac)):
        if e.port in want and e.port not in rebuilt:
            ops.append(DelBridgeFdb(e))
    for e in sorted(actual.vxlan_fdb - desired.vxlan_fdb, key=lambda e: (e.dev, e.mac, e.dst)):
        if e.dev in want and e.dev not in rebuilt:
            ops.append(DelVxlanFdb(e))
    wanted_classes = {(c.port, c.minor) for c in desired.mac_classes}
    for c in sorted(actual.mac_classes, key=lambda c: (c.port, c.minor)):
        if (c.port, c.minor) not in wanted_classes:
            ops.append(DelMacClass(c.port, c.minor))
    wanted_uplink = {(u.dev, u.minor) for u in desired.uplink_classes}
    for u in sorted(actual.uplink_classes, key=lambda u: (u.dev, -u.minor)):  # children before the parent
        if (u.dev, u.minor) not in wanted_uplink:
            ops.append(DelUplinkClass(u.dev, u.minor))
    for dev in sorted({u.dev for u in actual.uplink_classes} - {d for d, _ in wanted_uplink}):
        ops.append(DelUplinkClass(dev, 0))
    for a in sorted(actual.addresses - desired.addresses, key=lambda a: (a.dev, a.cidr)):
        if a.dev in want and a.dev not in rebuilt:
            ops.append(DelAddress(a))
    shaped = {s.port for s in desired.shapers}
    for port in sorted({s.port for s in actual.shapers} - shaped):
        ops.append(ClearShaper(port))
    wanted_ports = {p for p, _ in desired.attachments}
    for port, br in sorted(actual.attachments):
        if port not in wanted_ports:
            ops.append(Attach(port, ""))
    for l in sorted(actual.links, key=lambda l: (-order[l.kind], l.name)):
        if l.name not in want:
            ops.append(DelLink(l.name))
    return ops


# What observe() reads, by section: the fields of KernelState each one fills.
SECTIONS = {
    "links": ("links", "attachments"),
    "fdb": ("bridge_fdb", "vxlan_fdb"),
    "nft": ("nft_hash",),
    "shapers": ("shapers",),
    "mac_classes": ("mac_classes",),
    "uplink_classes": ("uplink_classes",),
    "addresses": ("addresses",),
}


def changed_sections(desired: KernelState, before: KernelState) -> frozenset[str]:
    """The sections in which two desired states differ."""
    return frozenset(n for n, fields in SECTIONS.items()
                     if any(getattr(desired, f) != getattr(before, f) for f in fields))


def reconcile(kernel: Kernel, desired: KernelState, converged: KernelState | None = None,
              trust: bool = False) -> list[Op]:
    """One pass: observe, diff, apply. Returns the ops applied (empty when converged).

    `converged`: a desired state the kernel was brought to by the previous pass, which nothing
    else has touched since as far as we know; then only the sections that differ from it are
    read back (a re-rated link: one class dump, not every link, FDB entry and qdisc). The
    caller passes None now and then, and after any error, so drift is still found. `trust`:
    not even those are read back (the fast lane's pass, whose first frame should not wait for
    a link dump: a failed op clears `converged`, and the loop's periodic full read-back finds
    any drift)."""
    if converged is None:
        actual = kernel.observe()
    elif trust:
        actual = converged
    else:
        sections = changed_sections(desired, converged)
        if not sections:
            return []
        seen = kernel.observe(sections)
        keep = {f: getattr(converged, f) for n, fields in SECTIONS.items() if n not in sections for f in fields}
        actual = replace(seen, **keep)
    ops = diff(desired, actual)
    for op in ops:
        kernel.apply(op)
    return ops
