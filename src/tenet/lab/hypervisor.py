"""The lab as the hypervisor of its VMs: when the intent changes (`tenet apply --lab`), the
VMs' namespaces and NICs are made to match it, wired as `lab up` wires them (lab/plan.py).

A VM the intent no longer names loses its namespace and its access LANs' (recorded ones only:
never by pattern). A new VM gets its namespace and NICs. A NIC that changed — another VN,
address or MAC, or its VN's addressing — is unplugged and plugged again as the intent now
says: its host's agent sees the port go and come back, as with any hypervisor's hot-plug.
An unchanged NIC of a VM that moved to another host has its host side handed to the new
host's namespace (a migration: the VM keeps its interfaces). Virtual routers are VMs too;
what only they have — paused or stopped, routes between their NICs — is lab/vrouter.py's.
Processes in a VM (a TES) are the lab's to stop before and start after (`VmChanges.restart`).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tenet.lab import netns
from tenet.lab.netns import LabError
from tenet.lab.plan import nic_plan, netns_name, host_port, vm_commands
from tenet.lab.record import Record
from tenet.lab.vrouter import VirtualRouters
from tenet.model.tenancy import Intent, Join, Vm, port_name
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
    return None


def _wired(intent: Intent, vm: Vm, i: int) -> tuple | None:
    """What NIC i's wiring depends on: the NIC, its VN (a routed one gives a default route)
    and whether the VM is dual-stack (no DAD on its NICs)."""
    if i >= len(vm.nics):
        return None
    nic = vm.nics[i]
    return nic, intent.vn(nic.network), any(n.ip6 for n in vm.nics)


class Hypervisor:
    """Makes one running lab's VMs match an intent (by its record, as VirtualRouters)."""

    def __init__(self, record: Record, store_url: str, progress: Callable[[str], None] = lambda _: None) -> None:
        self.record, self.lab, self.progress = record, record.name, progress
        self.vrouters = VirtualRouters(record, store_url)

    def follow(self, before: Intent, after: Intent) -> VmChanges:
        changes = vm_changes(before, after)
        old, new = {vm.name: vm for vm in before.vms}, {vm.name: vm for vm in after.vms}
        for name in changes.removed:
            self.progress(f"removing VM {name}")
            if old[name].router:
                self.vrouters.freeze(name, False)
            for i, nic in enumerate(old[name].nics):
                if nic.nves:
                    self._delete(f"{name}-lan{i}")
            self._delete(name)
        for name in changes.migrated:
            self.progress(f"moving VM {name} from {old[name].host} to {new[name].host}")
            for i in range(min(len(old[name].nics), len(new[name].nics))):
                if (name, i) not in changes.replugged:
                    self._move_port(after, port_name(name, i), old[name].host, new[name].host)
        for name, i in changes.replugged:
            self.progress(f"re-plugging VM {name}'s eth{i}")
            if i < len(old[name].nics):
                self._unplug(old[name], i)
            if i < len(new[name].nics):
                self._plug(after, new[name], i)
        for name in changes.added:
            self.progress(f"creating VM {name} on {new[name].host}")
            self._add(name)
            for c in vm_commands(after, new[name]):
                netns.command(c)
            for i in range(len(new[name].nics)):
                self._plug(after, new[name], i)
        self._vrouter_states(before, after, changes)
        if after.vrouters:
            self.vrouters.route(after)
        return changes

    def _vrouter_states(self, before: Intent, after: Intent, changes: VmChanges) -> None:
        """Paused is frozen, stopped has its NICs down (lab/vrouter.py's primitives)."""
        old = {v.name: v.state for v in before.vrouters if v.name not in changes.removed}
        vms = {vm.name: vm for vm in after.vms}
        for vr in after.vrouters:
            was = old.get(vr.name, "running")
            if was == vr.state:
                continue
            if was == "paused":
                self.vrouters.freeze(vr.name, False)
            if was == "stopped":
                self.vrouters.power(vms[vr.name], True)
            if vr.state == "stopped":
                self.vrouters.power(vms[vr.name], False)
            if vr.state == "paused":
                self.vrouters.freeze(vr.name, True)

    # -- effects, on what the record names -------------------------------------------------
    def _ns(self, node: str) -> str:
        return netns_name(self.lab, node)

    def _add(self, node: str) -> None:
        ns = self._ns(node)
        if netns.exists(ns):
            raise LabError(f"namespace {ns} already exists, not ours to touch")
        self.record.namespaces.append(ns)
        self.record.save()
        netns.add(ns)

    def _delete(self, node: str) -> None:
        ns = self._ns(node)
        if ns in self.record.namespaces:
            netns.delete(ns)
            self.record.namespaces.remove(ns)
            self.record.save()

    def _plug(self, intent: Intent, vm: Vm, i: int) -> None:
        p = nic_plan(intent, vm, i)
        for node in p.nodes:
            self._add(node.name)
        for v in p.veths:
            netns.veth(v)
        for c in (*p.commands, *p.attach):
            netns.command(c)

    def _unplug(self, vm: Vm, i: int) -> None:
        """The VM's side goes, and with it the veth's other end on the host (or its LAN)."""
        if vm.nics[i].nves:
            self._delete(f"{vm.name}-lan{i}")
        else:
            netns.run(["ip", "-n", self._ns(vm.name), "link", "del", f"eth{i}"], f"unplugging {vm.name}'s eth{i}")

    def _move_port(self, intent: Intent, port: str, old: str, new: str) -> None:
        netns.run(["ip", "-n", self._ns(old), "link", "set", port, "netns", self._ns(new)], f"moving {port} to {new}")
        for c in host_port(intent, new, port):
            netns.command(c)


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
                raise LabError(f"tables not published after {timeout:.0f}s: missing {sorted(missing)[:3]}, "
                               f"still listed {sorted(stale)[:3]}")
            time.sleep(0.05)
    finally:
        store.close()
