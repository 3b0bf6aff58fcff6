"""Management primitives on virtual routers (seed 001): what the hypervisor does, in the lab.

The intent says what a VR is — running, paused or stopped, on which host — and the controller
and agents follow it: a VR that is not running has no forwarding entries (its host's NVE gates
its ports) and its links' guarantees are released on every uplink. What only a hypervisor can
do is here. Pause freezes the VR's processes (cgroup v2 freezer) and keeps everything else, so
resume is instant; stop also takes its NICs down (routes through them go too) and start brings
them up and restores its routes; move hands the host side of each NIC to the new host's
namespace — the VR's own interfaces, addresses, routes and neighbours stay as they are.
Create builds the VR's namespace and NICs before the intent names it (a refused edit removes
them again); destroy edits the intent first and then removes what the lab recorded for it;
copy is create with the original's VNs, new MACs (they derive from the name) and free
addresses.
"""
from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from ipaddress import IPv4Interface, IPv6Interface
from pathlib import Path

from tenet.compute.overlay import vr_routes
from tenet.lab import netns
from tenet.lab.converge import wait_converged
from tenet.lab.netns import LabError
from tenet.lab.plan import Command, dual_stack, netns_name, nic_wiring, quiet
from tenet.lab.record import Record
from tenet.model.errors import IntentError, Problem
from tenet.model.load import _next_free, intent_to_doc, load_intent
from tenet.model.tenancy import Intent, port_name
from tenet.store.intent import edit_intent, read_intent, set_vrouter
from tenet.store.open import open_store

CGROUP_ROOT = Path("/sys/fs/cgroup")


def _ip(netns: str, *argv: str) -> None:
    r = subprocess.run(["ip", "-n", netns, *argv], capture_output=True, text=True)
    if r.returncode:
        raise LabError(f"ip -n {netns} {' '.join(argv)}: {r.stderr.strip()}")


def _vr(intent: Intent, name: str):
    vm = next((v for v in intent.vms if v.name == name and v.router), None)
    if vm is None:
        raise LabError(f"no virtual router named {name!r}")
    return vm


class VirtualRouters:
    """Primitives on one running lab's VRs, by its record and store (the CLI and Lab share it).
    Each returns once its change is live: `changed` hears the intent an operation wrote, after
    everything else it did, and waits until the controller and the agents have applied it
    (by default; the Lab's also follows the new intent)."""

    def __init__(self, record: Record, store_url: str, changed: Callable[[Intent], None] | None = None) -> None:
        self.record, self.lab, self.dir = record, record.name, record.dir
        self.store_url = store_url
        self.changed = changed or (lambda intent: wait_converged(store_url, [h.name for h in intent.fabric.hosts]))

    def _set(self, name: str, **kw) -> Intent:
        return self._edit(lambda store: set_vrouter(store, name, **kw))

    def _edit(self, edit: Callable) -> Intent:
        store = open_store(self.store_url)
        try:
            return edit(store)
        finally:
            store.close()

    def _done(self, intent: Intent) -> Intent:
        self.changed(intent)
        return intent

    def create(self, name: str, host: str, tenant: str, nics: list[dict]) -> Intent:
        """A new VR with NICs on ordinary VNs (`{"network": VN, "ip": "10.1.0.5/24"}`), running."""

        def change(doc: dict) -> None:
            if name in doc.get("vrouters", {}) or name in doc.get("vms", {}):
                raise IntentError((Problem(f"vrouters.{name}", "a VM or virtual router of that name exists"),), "edit")
            doc.setdefault("vrouters", {})[name] = {"host": host, "tenant": tenant, "nics": nics}

        doc = intent_to_doc(self._intent())
        change(doc)
        planned = load_intent(doc, "edit")  # refused here: nothing is built
        ns = netns_name(self.lab, name)
        if netns.exists(ns):
            raise LabError(f"namespace {ns} already exists, not ours to touch")
        self.record.namespaces.append(ns)
        self.record.save()
        try:
            netns.add(ns)
            vm = _vr(planned, name)
            cmds = quiet(ns, forward=True, ipv6=dual_stack(vm))
            for i in range(len(vm.nics)):
                veth, up = nic_wiring(planned, vm, i)
                netns.veth(veth)
                cmds += up + [Command(netns_name(self.lab, host), ("ip", "link", "set", port_name(name, i), "up"))]
            for c in cmds:
                netns.command(c)
            intent = self._edit(lambda store: edit_intent(store, change))
        except BaseException:
            self._remove(name)
            raise
        self.route(intent)
        return self._done(intent)

    def copy(self, source: str, name: str, host: str | None = None) -> Intent:
        """A clone of `source` on the same VNs with new MACs and the lowest free addresses
        (its links are not copied: a point-to-point link has its two ends)."""
        intent = self._intent()
        vm, vr = _vr(intent, source), next(v for v in intent.vrouters if v.name == source)
        links = {vl.name for vl in intent.vlinks}
        nics = []
        for nic in vm.nics:
            if nic.network in links:
                continue
            spec: dict = {"network": nic.network}
            if nic.ip is not None:
                spec["ip"] = str(_free(intent, nic.network, nic.ip))
            if nic.ip6:
                spec["ip6"] = [str(_free6(intent, nic.network, a)) for a in nic.ip6]
            nics.append(spec)
        return self.create(name, host or vr.host, vr.tenant, nics)

    def destroy(self, name: str) -> Intent:
        """Remove a VR and its virtual links from the intent, then its namespace (its NICs go
        with it). Each peer loses the NIC of a removed link; the peer's later NICs move down
        one place (a VR's link NICs are numbered in link order), so they are renamed in place
        — addresses and neighbours stay, routes are put back."""
        before = self._intent()
        _vr(before, name)
        gone = {vl.name for vl in before.vlinks if name in vl.ends}

        def change(doc: dict) -> None:
            doc["vrouters"].pop(name)
            for link in gone:
                doc["vlinks"].pop(link)

        intent = self._edit(lambda store: edit_intent(store, change))
        self.freeze(name, False)
        self._remove(name)
        for vl in before.vlinks:
            if vl.name in gone:
                peer = next(e for e in vl.ends if e != name)
                self._renumber(_vr(before, peer), _vr(intent, peer))
        self.route(intent)
        return self._done(intent)

    def _renumber(self, old, new) -> None:
        """Bring a VR's NICs from `old`'s numbering to `new`'s (same order, some gone)."""
        ns, host = netns_name(self.lab, old.name), netns_name(self.lab, old.host)
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

    def _remove(self, name: str) -> None:
        ns = netns_name(self.lab, name)
        if ns in self.record.namespaces:
            netns.delete(ns)
            self.record.namespaces.remove(ns)
            self.record.save()

    def route(self, intent: Intent) -> None:
        for vr, routes in vr_routes(intent).items():
            for net, via in routes:
                _ip(netns_name(self.lab, vr), "route", "replace", str(net), "via", str(via))

    def _intent(self) -> Intent:
        store = open_store(self.store_url)
        try:
            return read_intent(store)
        finally:
            store.close()

    def pause(self, name: str) -> Intent:
        _vr(self._intent(), name)
        self.freeze(name, True)
        return self._done(self._set(name, state="paused"))

    def resume(self, name: str) -> Intent:
        intent = self._set(name, state="running")
        self.freeze(name, False)
        return self._done(intent)

    def stop(self, name: str) -> Intent:
        vm = _vr(self._intent(), name)
        intent = self._set(name, state="stopped")
        self.power(vm, False)
        return self._done(intent)

    def start(self, name: str) -> Intent:
        self.power(_vr(self._intent(), name), True)
        intent = self._set(name, state="running")
        self.route(intent)
        return self._done(intent)

    def power(self, vm, on: bool) -> None:
        """A VR's NICs up (its routes through them are then put back by `route`) or down."""
        for i in range(len(vm.nics)):
            _ip(netns_name(self.lab, vm.name), "link", "set", f"eth{i}", "up" if on else "down")

    def move(self, name: str, host: str) -> Intent:
        vm = _vr(self._intent(), name)
        if vm.host == host:
            return self._intent()
        intent = self._set(name, host=host)  # validated: an unknown host changes nothing
        old, new = netns_name(self.lab, vm.host), netns_name(self.lab, host)
        for i in range(len(vm.nics)):
            _ip(old, "link", "set", port_name(name, i), "netns", new)
            _ip(new, "link", "set", port_name(name, i), "up")
        return self._done(intent)

    # -- the freezer -------------------------------------------------------------------
    def _cgroup(self, name: str) -> Path:
        return _freezer_root() / f"tenet-{self.lab}-{name}"

    def frozen(self, name: str) -> bool:
        cg = self._cgroup(name)
        if _v2():
            return cg.exists() and "frozen 1" in (cg / "cgroup.events").read_text()
        return cg.exists() and (cg / "freezer.state").read_text().strip() == "FROZEN"

    def freeze(self, name: str, frozen: bool) -> None:
        """Freeze the processes in the VR's namespace (a routing daemon, say) in a freezer
        cgroup of their own (v2, or v1's freezer hierarchy); thaw them back into the cgroups
        they came from, and remove ours."""
        cg, saved = self._cgroup(name), self.dir / f"frozen-{name}.json"
        if frozen:
            pids = subprocess.run(["ip", "netns", "pids", netns_name(self.lab, name)],
                                  capture_output=True, text=True).stdout.split()
            saved.write_text(json.dumps({pid: _origin(pid) for pid in pids}))
            cg.mkdir(exist_ok=True)
            for pid in pids:
                (cg / "cgroup.procs").write_text(pid)
            if _v2():
                (cg / "cgroup.freeze").write_text("1")
            else:
                (cg / "freezer.state").write_text("FROZEN")
        elif cg.exists():
            if _v2():
                (cg / "cgroup.freeze").write_text("0")
            else:
                (cg / "freezer.state").write_text("THAWED")
            origin = json.loads(saved.read_text()) if saved.exists() else {}
            for pid in (cg / "cgroup.procs").read_text().split():
                (_freezer_root() / origin.get(pid, "/").lstrip("/") / "cgroup.procs").write_text(pid)
            cg.rmdir()
            saved.unlink(missing_ok=True)


def _free(intent: Intent, vn: str, like: IPv4Interface) -> IPv4Interface:
    """The lowest address of the VN's subnet no NIC holds (nor a routed VN's gateway)."""
    used = {n.ip.ip for vm in intent.vms for n in vm.nics if n.network == vn and n.ip}
    free = _next_free(like.network, used, first=2 if intent.vn(vn).forwarding == "ip" else 1)
    if free is None:
        raise LabError(f"VN {vn} has no free address left in {like.network}")
    return free


def _free6(intent: Intent, vn: str, like: IPv6Interface) -> IPv6Interface:
    """The lowest address of `like`'s prefix no NIC of the VN holds (hosts() skips the
    Subnet-Router anycast address)."""
    used = {a.ip for vm in intent.vms for n in vm.nics if n.network == vn for a in n.ip6}
    free = next((a for a in like.network.hosts() if a not in used), None)
    if free is None:
        raise LabError(f"VN {vn} has no free IPv6 address left in {like.network}")
    return IPv6Interface(f"{free}/{like.network.prefixlen}")


def _v2() -> bool:
    return (CGROUP_ROOT / "cgroup.controllers").exists()


def _freezer_root() -> Path:
    if _v2():
        return CGROUP_ROOT
    if (CGROUP_ROOT / "freezer").is_dir():
        return CGROUP_ROOT / "freezer"
    raise LabError("pause needs a cgroup freezer (cgroup v2, or v1's freezer hierarchy), and none is mounted")


def _origin(pid: str) -> str:
    """The cgroup a process is in, in the freezer's hierarchy."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (_v2() and controllers == "") or (not _v2() and "freezer" in controllers.split(",")):
            return path
    return "/"
