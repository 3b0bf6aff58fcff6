"""Where each VM NIC is: the one input that changes when VMs join, leave or migrate."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from tenet.compute.port_security import Guard, Guarding, nic_guard, reported_sources, tenant_prefixes
from tenet.model.tenancy import Intent, Join, VmState, port_name, switch_port_name

if TYPE_CHECKING:  # the stored record (store/records.py); the core only reads its fields
    from tenet.store.records import EndpointReport


@dataclass(frozen=True)
class Tunnel:
    """An L3-attached TES's port: a VXLAN device on its NVE toward the TES's own IP."""

    port: str  # the device on the NVE, the endpoint's port
    remote: str  # the TES's IP, where the NVE sends its frames
    vni: int  # per-session access VNI (the VN's own VNI already names the VN's VXLAN device)
    udp_port: int


@dataclass(frozen=True)
class Endpoint:
    vn: str
    vm: str
    nic: int
    mac: str  # internal MAC, unique within the VN only
    ip: str  # "10.1.0.8/24" or ""
    host: str
    port: str  # host-side interface name
    tunnel: Tunnel | None = None  # the TES attached over L3 (docs/protocol.md, L3 transport)
    rate_down_bps: int = 0  # what its Access-Accept allows toward it (0: no limit)
    rate_up_bps: int = 0  # what its Access-Accept allows it to send (0: no limit)
    cos: int = 0  # its class of service (0: best effort)
    moving: bool = False  # one of a live-migrating NIC's two locations (declared_endpoints, arriving)
    ghost: bool = False  # the location an admitted NIC is migrating to, before it is admitted there
    guard: Guard = Guard.ON  # how its host checks what it sends (compute/port_security.py)
    sources: tuple[str, ...] = ()  # the addresses and prefixes it may send from (none: any)

    @property
    def key(self) -> tuple[str, str, int]:
        """Identity for external-MAC allocation: stable while the VM keeps its NIC."""
        return (self.vn, self.vm, self.nic)


def declared_endpoints(intent: Intent) -> tuple[Endpoint, ...]:
    """Endpoints the operator declared in the intent (dynamic ones are reported by agents).
    A paused or stopped VM has none: its host's NVE gates its ports. A VM being live-migrated
    has each NIC on a bridged VN at both hosts (make-before-break: compute/addressing.py
    `moving_rows`); on other VNs it is where it was until the migration commits."""
    both = {v.name for v in intent.vns if v.forwarding == "mac" and not v.over}
    tenant = {v.name: v.tenant for v in intent.vns}
    prefixes = tenant_prefixes(intent) if any(vm.router for vm in intent.vms) else {}
    out = []
    for vm in intent.vms:
        if vm.state is not VmState.RUNNING:
            continue
        for i, nic in enumerate(vm.nics):
            if nic.join is not Join.STATIC:
                continue
            guard, sources = nic_guard(vm, nic, prefixes, tenant.get(nic.network, ""))
            ep = Endpoint(vn=nic.network, vm=vm.name, nic=i, mac=nic.mac, ip=str(nic.ip) if nic.ip else "",
                          host=vm.host, port=port_name(vm.name, i), guard=guard, sources=sources)
            if vm.migrating_to and nic.network in both:
                ep = replace(ep, moving=True)
                out.append(replace(ep, host=vm.migrating_to))
            out.append(ep)
    return tuple(out)


def prestaged(intent: Intent) -> frozenset[tuple[str, str]]:
    """(NVE, VN) instances a live migration needs before its VM arrives where no declared
    endpoint can stand for it: a VM behind an access switch, or a TES, becomes its NVE's
    endpoint only once authenticated, so the switch in front of its destination (or the
    destination itself) holds its VNs from the start (instance, group and peers ready: the
    first frames need only the fast lane)."""
    switch_of = {x.name: x.switch for x in intent.fabric.proxies}
    return frozenset((switch_of.get(vm.migrating_to, vm.migrating_to), nic.network)
                     for vm in intent.vms if vm.migrating_to
                     for nic in vm.nics if nic.join in (Join.DOT1X, Join.MAB, Join.DISCOVER))


@dataclass(frozen=True)
class Arrival:
    """An admitted NIC (802.1X, MAB, NVO3) of a VM being live-migrated: where it arrives."""

    nve: str  # the destination's NVE: its access switch, or the destination itself
    port: str  # the port it will be admitted on there


def arrivals(intent: Intent) -> dict[tuple[str, str], Arrival]:
    """(VN, MAC) -> where it arrives, for every admitted NIC of a VM being migrated."""
    switch_of = {x.name: x.switch for x in intent.fabric.proxies}
    out = {}
    for vm in intent.vms:
        if not vm.migrating_to:
            continue
        to = vm.migrating_to
        for i, nic in enumerate(vm.nics):
            if nic.join in (Join.DOT1X, Join.MAB, Join.DISCOVER):
                out[nic.network, nic.mac] = Arrival(switch_of.get(to, to), switch_port_name(to) if to in switch_of
                                                    else port_name(vm.name, i))
    return out


def arriving(eps: Sequence[Endpoint], coming: Mapping[tuple[str, str], Arrival]) -> tuple[Endpoint, ...]:
    """A VN's endpoints with its migrating admitted NICs at both places (make-before-break, as
    declared_endpoints does for static NICs): until the destination's NVE has admitted one,
    its endpoint where it is and a ghost where it goes, both moving — peers then reach both
    (compute/addressing.py `moving_rows`) and the destination forwards the moment it admits
    it, from its fast lane. Once admitted there, that endpoint alone."""
    if not coming:
        return tuple(eps)
    out: list[Endpoint] = []
    for ep in eps:
        to = coming.get((ep.vn, ep.mac))
        if to is None:
            out.append(ep)
        elif ep.host == to.nve:
            out.append(ep)  # admitted at the destination (reported_endpoints preferred it)
        elif not any(e.host == to.nve and (e.vn, e.mac) == (ep.vn, ep.mac) for e in eps):
            moving = replace(ep, moving=True)
            out += [moving, replace(moving, host=to.nve, port=to.port, tunnel=None, ghost=True)]
    return tuple(out)


def dynamic_vm_name(mac: str) -> str:
    """Name of an auto-attached TES in the tables: it has no declared VM name."""
    return "tes-" + mac.replace(":", "")


def reported_endpoints(intent: Intent, reports: Sequence[EndpointReport],
                       declared: tuple[Endpoint, ...] = (),
                       coming: Mapping[tuple[str, str], Arrival] | None = None,
                       guards: Mapping[tuple[str, str], Guarding] | None = None) -> tuple[Endpoint, ...]:
    """Endpoints agents reported after admitting a TES. Ignored: reports for VNs no longer in
    the intent, and any whose MAC or IP another endpoint of the VN already holds (first wins,
    but a migrating NIC's destination NVE comes first: `coming`), so a TES can never take over
    a declared VM's address."""
    vns = {v.name for v in intent.vns}
    macs = {(e.vn, e.mac) for e in declared}
    ips = {(e.vn, e.ip.split("/")[0]) for e in declared if e.ip}
    out = []
    order = (lambda r: (r.session, r.mac)) if not coming else \
        (lambda r: (getattr(coming.get((r.vn, r.mac)), "nve", None) != r.host, r.session, r.mac))
    for r in sorted(reports, key=order):
        ip = r.ip
        if r.vn not in vns or (r.vn, r.mac) in macs or (ip and (r.vn, ip.split("/")[0]) in ips):
            continue
        macs.add((r.vn, r.mac))
        if ip:
            ips.add((r.vn, ip.split("/")[0]))
        out.append(report_endpoint(r, guards.get((r.vn, r.mac)) if guards else None))
    return tuple(out)


def admitted_guards(intent: Intent) -> dict[tuple[str, str], Guarding]:
    """(VN, MAC) -> port security of every NIC declared to join by admission (NVO3, 802.1X,
    MAB): what it was declared to send from holds once it is admitted, beside what it reported."""
    tenant = {v.name: v.tenant for v in intent.vns}
    prefixes = tenant_prefixes(intent) if any(vm.router for vm in intent.vms) else {}
    return {(nic.network, nic.mac): nic_guard(vm, nic, prefixes, tenant.get(nic.network, ""))
            for vm in intent.vms for nic in vm.nics if nic.join is not Join.STATIC}


def report_endpoint(r: EndpointReport, declared: Guarding | None = None) -> Endpoint:
    """The endpoint one admission report stands for (the controller's and, before the
    controller has answered, the admitting NVE's own: agent/provisional.py). `declared`: the
    port security its NIC was declared with, if it was (the NVE alone does not know it)."""
    t = r.tunnel
    tunnel = Tunnel(r.port, t.remote, t.vni, t.udp_port) if t else None
    p = r.provisioning
    return Endpoint(vn=r.vn, vm=dynamic_vm_name(r.mac), nic=0, mac=r.mac, ip=r.ip, host=r.host,
                    port=r.port, tunnel=tunnel, rate_down_bps=(p.rate_down_bps or 0) if p else 0,
                    rate_up_bps=(p.rate_up_bps or 0) if p else 0, cos=(p.cos or 0) if p else 0,
                    guard=declared[0] if declared else Guard.ON,
                    sources=(() if declared and declared[0] is Guard.OFF else
                             tuple(dict.fromkeys(reported_sources(r.ip) + (declared[1] if declared else ())))))
