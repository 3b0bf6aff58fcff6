"""Where each VM NIC is: the one input that changes when VMs join, leave or migrate."""
from __future__ import annotations

from dataclasses import dataclass

from tenet.model.tenancy import Intent, Join, port_name


@dataclass(frozen=True)
class Endpoint:
    vn: str
    vm: str
    nic: int
    mac: str  # internal MAC, unique within the VN only
    ip: str  # "10.1.0.8/24" or ""
    host: str
    port: str  # host-side interface name

    @property
    def key(self) -> tuple[str, str, int]:
        """Identity for external-MAC allocation: stable while the VM keeps its NIC."""
        return (self.vn, self.vm, self.nic)


def declared_endpoints(intent: Intent) -> tuple[Endpoint, ...]:
    """Endpoints the operator declared in the intent (dynamic ones are reported by agents)."""
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
        if nic.join is Join.STATIC
    )


def dynamic_vm_name(mac: str) -> str:
    """Name of an auto-attached TES in the tables: it has no declared VM name."""
    return "tes-" + mac.replace(":", "")


def reported_endpoints(intent: Intent, reports: list[dict]) -> tuple[Endpoint, ...]:
    """Endpoints agents reported after admitting a TES; reports for unknown VNs are ignored
    (the VN was removed from intent: the next agent pass will detach the port)."""
    vns = {v.name for v in intent.vns}
    return tuple(
        Endpoint(vn=r["vn"], vm=dynamic_vm_name(r["mac"]), nic=0, mac=r["mac"], ip=r.get("ip", ""), host=r["host"], port=r["port"])
        for r in reports
        if r.get("vn") in vns
    )
