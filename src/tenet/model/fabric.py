"""The physical side of a datacenter: L2 segments, routers between them, hosts on them.

Pure values. Addresses are already allocated here: the loader (model/load.py) fills in
whatever the operator left out, so everything downstream sees complete, validated intent.
"""
from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

from tenet.model.capacity import Capacity


@dataclass(frozen=True)
class PhysicalNetwork:
    """One L2 segment (a switch or VLAN) carrying one IPv4 subnet of the underlay."""

    name: str
    subnet: IPv4Network
    capacity_bps: int = 0  # what each uplink on it may send (HTB root); 0: unshaped


@dataclass(frozen=True)
class RouterPort:
    network: str
    address: IPv4Interface


@dataclass(frozen=True)
class Router:
    """Joins two or more physical networks; forwards unicast and the VNs' multicast groups."""

    name: str
    ports: tuple[RouterPort, ...]

    @property
    def networks(self) -> tuple[str, ...]:
        return tuple(p.network for p in self.ports)

    def address_on(self, network: str) -> IPv4Interface | None:
        for p in self.ports:
            if p.network == network:
                return p.address
        return None


@dataclass(frozen=True)
class Host:
    """An NVE: one uplink on one physical network; runs one agent. Its role (hypervisor or
    access switch) and capability are what a discovering TES selects by."""

    name: str
    network: str
    address: IPv4Interface
    role: str = "hypervisor"  # hypervisor | access-switch | router
    capability: int = 100
    switch: bool = False  # declared under `switches:`: its ports lead to hosts (proxies), not VMs
    mab: bool = False  # a switch: MAC Authentication Bypass allowed for MACs that speak no EAPOL
    admission_shards: int = 1  # admission processes on this NVE, by TES MAC (0: one per CPU)
    uplink: str = "up0"  # its interface on the physical network (a registered host says which)
    capacity: Capacity | None = None  # what VMs it may run (model/capacity.py); None: never a placement target

    @property
    def ip(self) -> IPv4Address:
        return self.address.ip


@dataclass(frozen=True)
class ProxyHost:
    """A host behind an access switch's port (seed 000): not an NVE. Its agent authenticates
    each of its VMs toward the switch with the VM's own MAC (802.1X on their behalf)."""

    name: str
    switch: str
    role: str = "proxy-8021x"
    capacity: Capacity | None = None  # as a Host's: VMs behind a switch move between such hosts only


@dataclass(frozen=True)
class Fabric:
    networks: tuple[PhysicalNetwork, ...]
    routers: tuple[Router, ...]
    hosts: tuple[Host, ...]  # the NVEs: hypervisors, and access switches
    proxies: tuple[ProxyHost, ...] = ()

    def network(self, name: str) -> PhysicalNetwork:
        return next(n for n in self.networks if n.name == name)

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)
