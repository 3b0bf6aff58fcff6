"""VMs following an intent someone else wrote (`tenet apply --lab`): made to match it by a
backend (hypervisor/backend.py), as the manager's own primitives are.

A VM the intent no longer names is removed. A new VM is built. A NIC that changed — another VN,
address or MAC, or its VN's addressing — is unplugged and plugged again as the intent now
says: its host's agent sees the port go and come back, as with any hypervisor's hot-plug.
An unchanged NIC of a VM that moved to another host has its host side handed to the new
host (a cold move: the VM keeps its interfaces, its peers learn of it from the tables; the
live migration is hypervisor/migration.py's). A changed power state is frozen, thawed,
powered. Processes in a VM (a TES) are the caller's to stop before and start after
(`VmChanges.restart`).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tenet.hypervisor.backend import Backend
from tenet.model.tenancy import Intent, Join, Vm, VmState
from tenet.store import published
from tenet.store.open import open_store


@dataclass(frozen=True)
class VmChanges:
    """What differs between the VMs (and virtual routers) of two intents."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    migrated: tuple[str, ...]  # same VM, another host
    replugged: tuple[tuple[str, int], ...]  # (VM, NIC index): unplugged if it was there, plugged if it is

    @property
    def restart(self) -> tuple[str, ...]:
        """VMs whose own processes (a TES on a NIC) must start again: new or re-plugged."""
        return tuple(dict.fromkeys([*self.added, *(vm for vm, _ in self.replugged)]))

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.migrated or self.replugged)


def vm_changes(before: Intent, after: Intent) -> VmChanges:
    old, new = {vm.name: vm for vm in before.vms}, {vm.name: vm for vm in after.vms}
    migrated, replugged = [], []
    for name in old.keys() & new.keys():
        a, b = old[name], new[name]
        if a.host != b.host:
            migrated.append(name)
        for i in range(max(len(a.nics), len(b.nics))):
            was = _wired(before, a, i)
            now = _wired(after, b, i)
            if was != now or (a.host != b.host and b.nics[i].nves):  # an access LAN is rebuilt, not moved
                replugged.append((name, i))
    return VmChanges(tuple(n for n in new if n not in old), tuple(n for n in old if n not in new),
                     tuple(sorted(migrated)), tuple(sorted(replugged)))


def unfollowable(before: Intent, after: Intent, radius: bool) -> str | None:
    """Why the lab cannot follow a change (checked before anything is written), or None."""
    if before.servers != after.servers:
        return "servers are physical machines on the underlay: the lab builds them at lab up only"
    if bool(after.aaa) != radius:
        return ("the lab runs its RADIUS server if it started with users, and only then: "
                + ("keep at least one user" if radius else "add users with lab down and up"))
    if radius and before.aaa_servers != after.aaa_servers:
        return "RADIUS servers are nodes on the underlay: the lab builds them at lab up only"
    return None


def _wired(intent: Intent, vm: Vm, i: int) -> tuple | None:
    """What NIC i's wiring depends on: the NIC, its VN (a routed one gives a default route)
    and whether the VM is dual-stack (no DAD on its NICs)."""
    if i >= len(vm.nics):
        return None
    nic = vm.nics[i]
    return nic, intent.vn(nic.network), any(n.ip6 for n in vm.nics)


def follow(vms: Backend, before: Intent, after: Intent, progress: Callable[[str], None] = lambda _: None) -> VmChanges:
    """Make the VMs match `after` (they matched `before`)."""
    changes = vm_changes(before, after)
    old, new = {vm.name: vm for vm in before.vms}, {vm.name: vm for vm in after.vms}
    for name in changes.removed:
        progress(f"removing VM {name}")
        vms.remove(old[name])
    for name in changes.migrated:
        progress(f"moving VM {name} from {old[name].host} to {new[name].host}")
        for i in range(min(len(old[name].nics), len(new[name].nics))):
            if (name, i) not in changes.replugged:
                vms.move_port(after, old[name], i, new[name].host)
    for name, i in changes.replugged:
        progress(f"re-plugging VM {name}'s eth{i}")
        if i < len(old[name].nics):
            vms.unplug(old[name], i)
        if i < len(new[name].nics):
            vms.plug(after, new[name], i)
    for name in changes.added:
        progress(f"creating VM {name} on {new[name].host}")
        vms.build(after, new[name])
    _states(vms, before, after, changes)
    if after.vrouters:
        vms.route(after)
    return changes


def _states(vms: Backend, before: Intent, after: Intent, changes: VmChanges) -> None:
    """Paused is frozen, stopped has its NICs down."""
    old = {vm.name: vm.state for vm in before.vms if vm.name not in changes.removed}
    for vm in after.vms:
        was = old.get(vm.name, VmState.RUNNING)
        if was is vm.state:
            continue
        if was is VmState.PAUSED:
            vms.freeze(vm, False)
        if was is VmState.STOPPED:
            vms.power(vm, True)
        if vm.state is VmState.STOPPED:
            vms.power(vm, False)
        if vm.state is VmState.PAUSED:
            vms.freeze(vm, True)


def wait_tables(store_url: str, before: Intent, after: Intent, timeout: float = 60.0) -> None:
    """Return when the published tables show the change: every statically joined NIC that is
    new (or re-plugged) listed on each host with a NIC on its VN — as local on its own — and
    every NIC that went listed nowhere. (The agents' convergence is waited for after this:
    until the controller has published, they are converged on the old tables.)"""
    def nics(intent: Intent) -> set[tuple[str, str, str]]:
        return {(n.network, n.mac, vm.host) for vm in intent.vms for n in vm.nics if n.join is Join.STATIC}

    old, new = nics(before), nics(after)
    fresh = new - old
    gone = {(vn, mac) for vn, mac, _ in old - new} - {(vn, mac) for vn, mac, _ in new}
    members = {vn: {h for v, _, h in new if v == vn} for vn, _, _ in fresh}
    routed = {v.name for v in after.vns if v.forwarding == "ip"}
    want = {(h, vn, mac, h == host) for vn, mac, host in fresh for h in (members[vn] if vn not in routed else {host})}
    hosts = [h.name for h in after.fabric.hosts]
    deadline = time.monotonic() + timeout
    store = open_store(store_url)
    try:
        while True:
            listed = set()
            for h in hosts:
                tables = published.read(store, h)
                for t in tables.vns if tables else ():
                    listed |= {(h, t.vn, e.destination, bool(e.port)) for e in t.entries}
                    listed |= {(h, t.vn, r.address, bool(r.port)) for r in t.routes}
            missing = want - listed
            stale = {(vn, mac) for _, vn, mac, _ in listed} & gone
            if not missing and not stale:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"tables not published after {timeout:.0f}s: missing {sorted(missing)[:3]}, "
                               f"still listed {sorted(stale)[:3]}")
            time.sleep(0.05)
    finally:
        store.close()
