"""Effects on namespaces: create, wire, run commands in, delete. Only names the lab recorded."""
from __future__ import annotations

import subprocess
from collections.abc import Sequence

from tenet.hypervisor.errors import HypervisorError
from tenet.lab.plan import Command, Veth


class LabError(HypervisorError):
    pass


def run(argv: Sequence[str], what: str) -> str:
    r = subprocess.run(list(argv), capture_output=True, text=True)
    if r.returncode != 0:
        raise LabError(f"{what}: `{' '.join(argv)}` failed: {(r.stderr or r.stdout).strip()}")
    return r.stdout


def exists(netns: str) -> bool:
    r = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    return any(line.split()[0] == netns for line in r.stdout.splitlines() if line.strip())


def add(netns: str) -> None:
    run(["ip", "netns", "add", netns], f"creating namespace {netns}")


def delete(netns: str) -> None:
    if exists(netns):
        run(["ip", "netns", "del", netns], f"deleting namespace {netns}")


def veth(v: Veth) -> None:
    argv = ["ip", "link", "add", v.a, "netns", v.a_ns]
    if v.a_mac:
        argv += ["address", v.a_mac]
    argv += ["mtu", str(v.mtu), "type", "veth", "peer", "name", v.b, "netns", v.b_ns, "mtu", str(v.mtu)]
    run(argv, f"wiring {v.a_ns}:{v.a} to {v.b_ns}:{v.b}")


def command(c: Command) -> None:
    run(["ip", "netns", "exec", c.netns, *c.argv], f"configuring {c.netns}")
