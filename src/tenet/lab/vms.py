"""The lab's hypervisor backend (hypervisor/backend.py): a VM is a namespace wired to its
host's namespace by veth, as `lab up` wires it (lab/plan.py). Every namespace it creates is
recorded before it exists and only recorded ones are removed (never by pattern)."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from tenet.compute.overlay import vr_routes
from tenet.hypervisor.freezer import Freezer
from tenet.lab import netns
from tenet.lab.announce import announce
from tenet.lab.netns import LabError
from tenet.lab.plan import behind_switch, netns_name, nic_plan, vm_commands
from tenet.lab.record import Record, start_time
from tenet.lab.supervision import current
from tenet.model.tenancy import Intent, Join, Vm, port_name
from tenet.store.base import StoreError
from tenet.store.netns import inside


def _ip(ns: str, *argv: str) -> None:
    r = subprocess.run(["ip", "-n", ns, *argv], capture_output=True, text=True)
    if r.returncode:
        raise LabError(f"ip -n {ns} {' '.join(argv)}: {r.stderr.strip()}")


def _index(name: str) -> int:
    """The interface's index in the calling thread's namespace (one ioctl, no dump)."""
    return socket.if_nametoindex(name)


class LabVms:
    """VMs of one running lab, by its record."""

    def __init__(self, record: Record) -> None:
        self.record, self.lab = record, record.name
        self.freezer = Freezer(record.name, record.dir)

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

    def build(self, intent: Intent, vm: Vm) -> None:
        self._add(vm.name)
        try:
            for c in vm_commands(intent, vm):
                netns.command(c)
            for i in range(len(vm.nics)):
                self.plug(intent, vm, i)
        except BaseException:
            self.remove(vm)
            raise

    def remove(self, vm: Vm) -> None:
        self.freezer.thaw(vm.name)
        for i, nic in enumerate(vm.nics):
            if nic.nves:
                self._delete(f"{vm.name}-lan{i}")
        self._delete(vm.name)

    def plug(self, intent: Intent, vm: Vm, i: int) -> None:
        p = nic_plan(intent, vm, i)
        for node in p.nodes:
            self._add(node.name)
        for v in p.veths:
            netns.veth(v)
        for c in (*p.commands, *p.attach):
            netns.command(c)

    def unplug(self, vm: Vm, i: int) -> None:
        """The VM's side goes, and with it the veth's other end on the host (or its LAN)."""
        if vm.nics[i].nves:
            self._delete(f"{vm.name}-lan{i}")
        else:
            netns.run(["ip", "-n", self._ns(vm.name), "link", "del", f"eth{i}"], f"unplugging {vm.name}'s eth{i}")

    def move_port(self, intent: Intent, vm: Vm, i: int, to: str) -> None:
        """One netlink request hands the port over and one brings it up, from sockets opened
        in both namespaces beforehand (`ip` costs ~10 ms a call: the whole cut-over's gap)."""
        port, src, dst = port_name(vm.name, i), self._ns(vm.host), self._ns(to)
        try:
            with inside(src):
                here, idx = IPRoute(), _index(port)
            with inside(dst):
                there = IPRoute()
                master = _index("br0") if behind_switch(intent, to) else None
        except (StoreError, OSError) as e:
            raise LabError(f"moving {port} from {vm.host} to {to}: {e}") from None
        try:
            here.link("set", index=idx, net_ns_fd=dst)
            with inside(dst):
                idx = _index(port)
            there.link("set", index=idx, state="up", **({"master": master} if master else {}))
        except (NetlinkError, OSError, StoreError) as e:
            raise LabError(f"moving {port} from {vm.host} to {to}: {e}") from None
        finally:
            here.close()
            there.close()

    def serving(self, vm: Vm) -> bool:
        for i in (i for i, n in enumerate(vm.nics) if n.join is Join.STATIC):
            r = subprocess.run(["ip", "-n", self._ns(vm.host), "-j", "link", "show", "dev", port_name(vm.name, i)],
                               capture_output=True, text=True)
            if r.returncode or not any(link.get("master") for link in json.loads(r.stdout or "[]")):
                return False
        return True

    def rediscover(self, vm: Vm) -> None:
        """SIGUSR1 to the TESs the lab started in the VM (by recorded PID and start time)."""
        for p in current(self.record):
            if p.role == "tes" and p.node.partition(".")[0] == vm.name and start_time(p.pid) == p.start_time:
                os.kill(p.pid, signal.SIGUSR1)

    def announce(self, vm: Vm) -> None:
        announce(self._ns(vm.name), vm)

    def power(self, vm: Vm, on: bool) -> None:
        for i in range(len(vm.nics)):
            _ip(self._ns(vm.name), "link", "set", f"eth{i}", "up" if on else "down")

    def freeze(self, vm: Vm, frozen: bool) -> None:
        if frozen:
            self.freezer.freeze(vm.name, self._ns(vm.name))
        else:
            self.freezer.thaw(vm.name)

    def frozen(self, name: str) -> bool:
        return self.freezer.frozen(name)

    def route(self, intent: Intent) -> None:
        for vr, routes in vr_routes(intent).items():
            for net, via in routes:
                _ip(self._ns(vr), "route", "replace", str(net), "via", str(via))

    def renumber(self, old: Vm, new: Vm) -> None:
        ns, host = self._ns(old.name), self._ns(old.host)
        kept = [n.network for n in new.nics]
        for j, nic in enumerate(old.nics):
            if nic.network not in kept:
                _ip(ns, "link", "del", f"eth{j}")  # its peer, the host's port, goes with it
        for j, nic in enumerate(old.nics):
            k = kept.index(nic.network) if nic.network in kept else j
            if k == j:
                continue
            for where, a, b in ((ns, f"eth{j}", f"eth{k}"), (host, port_name(old.name, j), port_name(old.name, k))):
                _ip(where, "link", "set", a, "down")
                _ip(where, "link", "set", a, "name", b)
                _ip(where, "link", "set", b, "up")


def lab_hypervisor(lab: str, progress=lambda _: None):
    """A running lab's hypervisor, as the CLI and the API drive it: each change waits until
    the agents applied it."""
    from tenet.hypervisor.manager import Hypervisor
    from tenet.lab.converge import wait_converged

    rec = Record.load(lab)
    url = rec.store_url

    def settle(intent: Intent) -> None:
        wait_converged(url, [h.name for h in intent.fabric.hosts])

    return Hypervisor(url, LabVms(rec), settle=settle, progress=progress)
