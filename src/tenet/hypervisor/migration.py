"""Live migration, in the order the seeds give it (seed 002 FIG. 8; seed 000 FIG. 4).

1. Pre-stage: the intent names the destination (`migrating_to`); the controller gives it the
   VM's VN instances and tables, and every peer reaches the VM at both hosts
   (compute/addressing.py `moving_rows`). We go on only when every agent has applied that.
2. Cut over: the VM's ports move to the destination host; the VM itself — its processes,
   sockets, addresses, neighbours — stays as it is, as memory does in a real migration. The
   destination's agent finds the port its tables already name; the source's sees it go and
   forwards what still reaches it to the destination (agent/desired.py `settled`).
3. Announce: RARP and gratuitous ARP from the VM's own interfaces, at its new host, so
   learning switches and neighbours follow. A VM behind an access switch is logged off by
   its old host and authenticated by its new one toward its own switch when the port moves
   (agent/proxy_main.py); a TES is nudged to discover the new NVE at once (tes/nudge.py),
   its old NVE having ended its session when the port left (agent/admission.py port_gone).
4. Commit: the intent names the new host alone; the peers' addressing functions change
   where the new host sits on another physical network (translate <-> encapsulate); the
   source keeps its VN instance for the controller's hold (controller/hold.py) if the VM was
   its last there, then loses it.

Interrupted, it can be run again: a VM already pre-staged for the same host goes on from
there. The naive move (`live=False`) is the bench's baseline: the intent changes, then the
ports follow, nothing is prepared.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Protocol

from tenet.compute.endpoints import arrivals
from tenet.hypervisor.backend import Backend
from tenet.hypervisor.errors import HypervisorError
from tenet.model.tenancy import Intent, Join, Vm, VmState

SERVING_TIMEOUT = 10.0  # the destination's agent attaches a port its tables name within ms
POLL = 0.002


class Hypervisor(Protocol):
    """What a migration needs of the hypervisor (manager.py): the intent, edits, settling."""

    vms: Backend

    def intent(self) -> Intent: ...
    def vm(self, name: str, intent: Intent | None = None) -> Vm: ...
    def set(self, name: str, **fields: str | None) -> Intent: ...
    def settle(self, intent: Intent) -> None: ...
    def progress(self, message: str) -> None: ...
    def admitted(self, awaited: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]: ...
    def close(self) -> None: ...


@dataclass(frozen=True)
class Report:
    vm: str
    source: str
    destination: str
    live: bool
    prestage_s: float  # intent written -> every agent applied the pre-staged tables
    cutover_s: float  # ports handed over -> served at the destination and announced
    commit_s: float  # final intent written -> every agent applied it


def migrate(hv: Hypervisor, name: str, to: str, *, live: bool = True) -> Report:
    intent = hv.intent()
    vm = hv.vm(name, intent)
    if vm.host == to:
        raise HypervisorError(f"{name} is already on {to}")
    if vm.migrating_to and vm.migrating_to != to:
        raise HypervisorError(f"{name} is being migrated to {vm.migrating_to}: finish that first "
                              f"(tenet vm migrate {name} --to {vm.migrating_to})")
    lan = next((i for i, n in enumerate(vm.nics) if n.nves), None)
    if lan is not None:
        raise HypervisorError(f"{name}'s eth{lan} is on an access LAN of several NVEs: such a TES moves by "
                              "re-plugging (tenet apply), not by live migration")
    hv.progress(f"migrating {name} from {vm.host} to {to}{'' if live else ' (naive)'}")
    t0 = time.monotonic()
    if live and not vm.migrating_to:
        intent = hv.set(name, migrating_to=to)
        hv.settle(intent)
    elif not live:
        intent = hv.set(name, host=to, migrating_to=None)
    t1 = time.monotonic()
    arrived = _cut_over(hv, intent, vm, to)
    t2 = time.monotonic()
    if live:
        intent = hv.set(name, host=to, migrating_to=None)
    if vm.state is VmState.RUNNING:
        hv.vms.announce(arrived)
    hv.settle(intent)
    if vm.state is VmState.RUNNING:
        hv.vms.announce(arrived)
    return Report(name, vm.host, to, live, t1 - t0 if live else 0.0, t2 - t1, time.monotonic() - t2)


def _cut_over(hv: Hypervisor, intent: Intent, vm: Vm, to: str) -> Vm:
    """The ports handed over; returns the VM as it now is, once its new host serves it."""
    for i in range(len(vm.nics)):
        hv.vms.move_port(intent, vm, i, to)
    arrived = replace(vm, host=to, migrating_to="")
    if vm.state is not VmState.RUNNING:
        return arrived  # no NVE serves it before it runs again
    if any(n.join is Join.DISCOVER for n in vm.nics):
        hv.vms.rediscover(arrived)  # its TESs attach through the new NVE (the old one ended them)
    coming = arrivals(intent)  # a pre-staged intent: where its admitted NICs are awaited
    awaited = [(a.nve, n.network, n.mac) for n in vm.nics for a in [coming.get((n.network, n.mac))] if a]
    deadline = time.monotonic() + SERVING_TIMEOUT
    try:
        while not hv.vms.serving(arrived) or hv.admitted(awaited):
            if time.monotonic() > deadline:
                late = hv.admitted(awaited)
                why = (f"not admitted: {', '.join(f'{mac} by {nve}' for nve, _, mac in late)} (refused there?)" if late
                       else f"{to}'s agent has not taken its ports (is it up? `tenet hosts`)")
                raise HypervisorError(f"{vm.name} not served at {to} after {SERVING_TIMEOUT:.0f}s: {why}; "
                                      "run the migration again to go on")
            time.sleep(POLL)
    finally:
        hv.close()
    hv.vms.announce(arrived)
    return arrived
