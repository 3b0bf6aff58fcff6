"""Pause as a hypervisor pauses: a VM's processes frozen in a cgroup of their own (v2, or v1's
freezer hierarchy) and thawed back into the cgroups they came from. Everything else of the VM
(its interfaces, sockets, neighbours) stays as it is, so resume is instant."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


class FreezerError(RuntimeError):
    pass


class Freezer:
    """Freezer cgroups named `tenet-<scope>-<vm>`; which PIDs came from where is saved under
    `saved` (a directory the caller owns) so a thaw after a restart puts them back."""

    def __init__(self, scope: str, saved: Path) -> None:
        self.scope, self.saved = scope, saved

    def _cgroup(self, name: str) -> Path:
        return _root() / f"tenet-{self.scope}-{name}"

    def _file(self, name: str) -> Path:
        return self.saved / f"frozen-{name}.json"

    def frozen(self, name: str) -> bool:
        cg = self._cgroup(name)
        if _v2():
            return cg.exists() and "frozen 1" in (cg / "cgroup.events").read_text()
        return cg.exists() and (cg / "freezer.state").read_text().strip() == "FROZEN"

    def freeze(self, name: str, netns: str) -> None:
        """Freeze every process in the VM's namespace."""
        cg, saved = self._cgroup(name), self._file(name)
        pids = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True).stdout.split()
        saved.write_text(json.dumps({pid: _origin(pid) for pid in pids}))
        cg.mkdir(exist_ok=True)
        for pid in pids:
            (cg / "cgroup.procs").write_text(pid)
        if _v2():
            (cg / "cgroup.freeze").write_text("1")
        else:
            (cg / "freezer.state").write_text("FROZEN")

    def thaw(self, name: str) -> None:
        """Thaw them back into the cgroups they came from, and remove ours (no-op if none)."""
        cg, saved = self._cgroup(name), self._file(name)
        if not cg.exists():
            return
        if _v2():
            (cg / "cgroup.freeze").write_text("0")
        else:
            (cg / "freezer.state").write_text("THAWED")
        origin = json.loads(saved.read_text()) if saved.exists() else {}
        for pid in (cg / "cgroup.procs").read_text().split():
            (_root() / origin.get(pid, "/").lstrip("/") / "cgroup.procs").write_text(pid)
        cg.rmdir()
        saved.unlink(missing_ok=True)

    def thaw_all(self) -> None:
        """Everything this scope froze (a lab going down)."""
        for f in self.saved.glob("frozen-*.json") if self.saved.exists() else ():
            self.thaw(f.stem.removeprefix("frozen-"))


def _v2() -> bool:
    return (CGROUP_ROOT / "cgroup.controllers").exists()


def _root() -> Path:
    if _v2():
        return CGROUP_ROOT
    if (CGROUP_ROOT / "freezer").is_dir():
        return CGROUP_ROOT / "freezer"
    raise FreezerError("pause needs a cgroup freezer (cgroup v2, or v1's freezer hierarchy), and none is mounted")


def _origin(pid: str) -> str:
    """The cgroup a process is in, in the freezer's hierarchy."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if (_v2() and controllers == "") or (not _v2() and "freezer" in controllers.split(",")):
            return path
    return "/"
