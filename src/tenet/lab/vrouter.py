"""Management primitives on virtual routers (seed 001): what the hypervisor does, in the lab.

The intent says what a VR is — running, paused or stopped, on which host — and the controller
and agents follow it: a VR that is not running has no forwarding entries (its host's NVE gates
its ports) and its links' guarantees are released on every uplink. What only a hypervisor can
do is here. Pause freezes the VR's processes (cgroup v2 freezer) and keeps everything else, so
resume is instant; stop also takes its NICs down (routes through them go too) and start brings
them up and restores its routes; move hands the host side of each NIC to the new host's
namespace — the VR's own interfaces, addresses, routes and neighbours stay as they are.
"""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tenet.compute.overlay import vr_routes
from tenet.lab.netns import LabError
from tenet.lab.plan import netns_name
from tenet.model.tenancy import Intent, port_name
from tenet.store.intent import read_intent, set_vrouter
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
    """Primitives on one running lab's VRs, by lab name and store (the CLI and Lab share it)."""

    def __init__(self, lab: str, store_url: str, lab_dir: Path) -> None:
        self.lab, self.store_url, self.dir = lab, store_url, lab_dir

    def _set(self, name: str, **kw) -> Intent:
        store = open_store(self.store_url)
        try:
            return set_vrouter(store, name, **kw)
        finally:
            store.close()

    def _intent(self) -> Intent:
        store = open_store(self.store_url)
        try:
            return read_intent(store)
        finally:
            store.close()

    def pause(self, name: str) -> Intent:
        _vr(self._intent(), name)
        self._freeze(name, True)
        return self._set(name, state="paused")

    def resume(self, name: str) -> Intent:
        intent = self._set(name, state="running")
        self._freeze(name, False)
        return intent

    def stop(self, name: str) -> Intent:
        vm = _vr(self._intent(), name)
        intent = self._set(name, state="stopped")
        for i in range(len(vm.nics)):
            _ip(netns_name(self.lab, name), "link", "set", f"eth{i}", "down")
        return intent

    def start(self, name: str) -> Intent:
        vm = _vr(self._intent(), name)
        ns = netns_name(self.lab, name)
        for i in range(len(vm.nics)):
            _ip(ns, "link", "set", f"eth{i}", "up")
        intent = self._set(name, state="running")
        for net, via in vr_routes(intent)[name]:
            _ip(ns, "route", "replace", str(net), "via", str(via))
        return intent

    def move(self, name: str, host: str) -> Intent:
        vm = _vr(self._intent(), name)
        if vm.host == host:
            return self._intent()
        intent = self._set(name, host=host)  # validated: an unknown host changes nothing
        old, new = netns_name(self.lab, vm.host), netns_name(self.lab, host)
        for i in range(len(vm.nics)):
            _ip(old, "link", "set", port_name(name, i), "netns", new)
            _ip(new, "link", "set", port_name(name, i), "up")
        return intent

    # -- the freezer -------------------------------------------------------------------
    def _cgroup(self, name: str) -> Path:
        return _freezer_root() / f"tenet-{self.lab}-{name}"

    def frozen(self, name: str) -> bool:
        cg = self._cgroup(name)
        if _v2():
            return cg.exists() and "frozen 1" in (cg / "cgroup.events").read_text()
        return cg.exists() and (cg / "freezer.state").read_text().strip() == "FROZEN"

    def _freeze(self, name: str, frozen: bool) -> None:
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
