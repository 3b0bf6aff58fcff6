"""Where each VM NIC is: the one input that changes when VMs join, leave or migrate."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenet.model.tenancy import Intent, Join, port_name

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

    @property
    def key(self) -> tuple[str, str, int]:
        """Identity for external-MAC allocation: stable while the VM keeps its NIC."""
        return (self.vn, self.vm, self.nic)


def declared_endpoints(intent: Intent) -> tuple[Endpoint, ...]:
    """Endpoints the operator declared in the intent (dynamic ones are reported by agents).
    A paused or stopped virtual router has none: its host's NVE gates its ports."""
    idle = {vr.name for vr in intent.vrouters if vr.state != "running"}
    return tuple(
        Endpoint(
            vn=nic.network,
            vm=vm.name,
            nic=i,
            mac=nic.mac,
            ip=str(nic.ip) if nic.ip else "",
            host=vm.host,
            port=port_name(vm.name, i),
        )
        for vm in intent.vms
        for i, nic in enumerate(vm.nics)
        if nic.join is Join.STATIC and vm.name not in idle
    )


def dynamic_vm_name(mac: str) -> str:
    """Name of an auto-attached TES in the tables: it has no declared VM name."""
    return "tes-" + mac.replace(":", "")


def reported_endpoints(intent: Intent, reports: Sequence[EndpointReport],
                       declared: tuple[Endpoint, ...] = ()) -> tuple[Endpoint, ...]:
    """Endpoints agents reported after admitting a TES. Ignored: reports for VNs no longer in
    the intent, and any whose MAC or IP another endpoint of the VN already holds (first wins),
    so a TES can never take over a declared VM's address."""
    vns = {v.name for v in intent.vns}
    macs = {(e.vn, e.mac) for e in declared}
    ips = {(e.vn, e.ip.split("/")[0]) for e in declared if e.ip}
    out = []
    for r in sorted(reports, key=lambda r: (r.session, r.mac)):
        ip = r.ip
        if r.vn not in vns or (r.vn, r.mac) in macs or (ip and (r.vn, ip.split("/")[0]) in ips):
            continue
        macs.add((r.vn, r.mac))
        if ip:
            ips.add((r.vn, ip.split("/")[0]))
        out.append(report_endpoint(r))
    return tuple(out)


def report_endpoint(r: EndpointReport) -> Endpoint:
    """The endpoint one admission report stands for (the controller's and, before the
    controller has answered, the admitting NVE's own: agent/provisional.py)."""
    t = r.tunnel
    tunnel = Tunnel(r.port, t.remote, t.vni, t.udp_port) if t else None
    p = r.provisioning
    return Endpoint(vn=r.vn, vm=dynamic_vm_name(r.mac), nic=0, mac=r.mac, ip=r.ip, host=r.host,
                    port=r.port, tunnel=tunnel, rate_down_bps=(p.rate_down_bps or 0) if p else 0,
                    rate_up_bps=(p.rate_up_bps or 0) if p else 0, cos=(p.cos or 0) if p else 0)
