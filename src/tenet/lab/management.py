"""The lab's management network, for a control plane on etcd (`control: {store: etcd}`). Pure.

As in a datacenter, the control plane has a network of its own, apart from the underlay the
tenants' traffic crosses: a bridge in a namespace of its own (`mgmt`), and a veth `mg0` from it
into every host, switch and proxy host, into one namespace per etcd member (`etcd1..N`) and
one per controller replica (`ctl1..N`). Its subnet is the top of 198.18.0.0/15 below the
anycast RP range, /24 unless more stations need more; a topology whose underlay overlaps it
is refused. The root namespace is never attached: root-side tools reach the members from
inside the `mgmt` namespace (the store URL's `netns=` option), at the bridge's own address.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from tenet.lab.control import Control, StoreKind
from tenet.lab.frr import ANYCAST_RANGE
from tenet.model.errors import IntentError, Problem
from tenet.model.tenancy import Intent

MGMT = "mgmt"
DEV = "mg0"  # a station's management interface


@dataclass(frozen=True)
class Station:
    """A namespace on the management network."""

    name: str  # node name: etcd1, ctl1, or a host's
    kind: str  # etcd | controller | host | proxy
    netns: str
    ip: IPv4Interface


@dataclass(frozen=True)
class Management:
    subnet: IPv4Network
    netns: str  # the bridge's namespace: root-side tools enter it
    address: IPv4Interface  # the bridge's own
    stations: tuple[Station, ...]

    def of(self, kind: str) -> tuple[Station, ...]:
        return tuple(s for s in self.stations if s.kind == kind)

    @property
    def etcd(self) -> tuple[Station, ...]:
        return self.of("etcd")

    @property
    def controllers(self) -> tuple[Station, ...]:
        return self.of("controller")

    def station(self, name: str) -> Station:
        return next(s for s in self.stations if s.name == name)


def subnet_for(stations: int) -> IPv4Network:
    """The highest block below the anycast range with room for the bridge and `stations`."""
    prefix = 24
    while 2 ** (32 - prefix) - 3 < stations:
        prefix -= 1
    size, top = 2 ** (32 - prefix), int(IPv4Network(ANYCAST_RANGE).network_address)
    return IPv4Network((IPv4Address((top // size - 1) * size), prefix))


def reserved(control: Control) -> tuple[str, ...]:
    """Node names the management network takes."""
    return (MGMT, *(f"etcd{i}" for i in range(1, control.etcd_members + 1)),
            *(f"ctl{i}" for i in range(1, control.controllers + 1)))


def management(intent: Intent, control: Control, netns_name: Callable[[str, str], str]) -> Management | None:
    """Where every station sits, or None without etcd. IntentError when the topology uses a
    reserved node name or an underlay subnet overlapping the management one."""
    if control.store is not StoreKind.ETCD:
        return None
    f = intent.fabric
    named = [("etcd", f"etcd{i}") for i in range(1, control.etcd_members + 1)]
    named += [("controller", f"ctl{i}") for i in range(1, control.controllers + 1)]
    named += [("host", h.name) for h in f.hosts] + [("proxy", x.name) for x in f.proxies]
    subnet = subnet_for(len(named))
    problems = []
    taken = {n.name for n in f.networks} | {r.name for r in f.routers} | {h.name for h in f.hosts} \
        | {x.name for x in f.proxies} | {v.name for v in intent.vms} | {s.name for s in intent.servers}
    for name in reserved(control):
        if name in taken:
            problems.append(Problem("control.store", f"node name {name!r} is taken by the management network with store: etcd; rename it"))
    for n in f.networks:
        if n.subnet.overlaps(subnet):
            problems.append(Problem(f"underlay.networks.{n.name}",
                                    f"{n.subnet} overlaps the lab's management network {subnet} (store: etcd); use another subnet"))
    if problems:
        raise IntentError(tuple(problems), "control")
    hosts = subnet.hosts()
    bridge = IPv4Interface((next(hosts), subnet.prefixlen))
    stations = tuple(Station(name, kind, netns_name(intent.name, name), IPv4Interface((next(hosts), subnet.prefixlen)))
                     for kind, name in named)
    return Management(subnet, netns_name(intent.name, MGMT), bridge, stations)
