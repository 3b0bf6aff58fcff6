"""OVN as a peer on this machine: two chassis and a central node in network namespaces, for
bench/peer_ovn.py to time beside tenet in the same run.

Debian 12's OVN (23.03) and Open vSwitch (3.1) on the userspace `netdev` datapath (the kernel
has no OVS module), Geneve between the chassis. Namespaces `tn-povn-ul` (the underlay bridge,
198.18.230.0/24), `-central` (NB and SB ovsdb-server, the SB also on TCP 6642, ovn-northd),
`-hv1` and `-hv2` (each its own ovsdb-server, ovs-vswitchd with the netdev bridges br-phy —
holding the underlay veth and the chassis address — and br-int, and ovn-controller). VMs are
namespaces with a veth whose host side is plugged into br-int. What it took (from the shared
scripts that first did it here): `ethtool -K <veth> tx off` on every veth feeding OVS, since
the userspace datapath cannot finish partial checksums; the chassis address on an OVS bridge;
an underlay ping to prime the tunnel's ARP; absolute socket paths on every ctl call.

Lab safety as tenet's lab keeps it (lab/record.py): each namespace is recorded before it is
created, each daemon by the PID in its pidfile once it has detached, every file lives under the
record's directory, and `tenet.lab.lab.down(record)` — on the way out, or `tenet lab down povn`
after a crash — removes exactly that. Nothing is found or stopped by name.
"""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

from ovsdb import Ovsdb
from tenet.lab import netns
from tenet.lab.lab import down
from tenet.lab.netns import LabError
from tenet.lab.plan import Command, Veth, netns_name, quiet
from tenet.lab.record import Proc, Record, start_time

PACKAGES = ("ovn-central", "ovn-host", "openvswitch-switch", "ethtool")
SERVICES = ("ovn-host", "ovn-central", "openvswitch-switch")  # what the packages would start
DAEMONS = frozenset({"ovsdb-server", "ovs-vswitchd", "ovn-northd", "ovn-controller"})
POLICY_RC = Path("/usr/sbin/policy-rc.d")  # invoke-rc.d asks it; 101: "do not start anything"
PIDFILE_DIRS = (Path("/run/openvswitch"), Path("/run/ovn"))
SUBNET = IPv4Network("198.18.230.0/24")
CENTRAL = 10  # host part of central's underlay address; chassis hvN get N
UL_MTU, VM_MTU = 1600, 1500  # Geneve's overhead fits under the underlay's MTU
SWITCH = "ls0"
COLD_FLOWS = 30  # fewer flows than this in hv1's br-int: it holds nothing of ls0 (~140 when it does)

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# -- the packages ------------------------------------------------------------------------------
def installed(package: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def root_daemons() -> list[tuple[int, str]]:
    """OVS/OVN daemons running in this (the root) network namespace: (PID, name). Only looked
    at, never signalled: ours run in the lab's namespaces."""
    here = os.stat("/proc/self/ns/net").st_ino
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            name = (d / "comm").read_text().strip()
            if name in DAEMONS and os.stat(d / "ns" / "net").st_ino == here:
                found.append((int(d.name), name))
        except OSError:
            continue
    return found


def _stray_pidfiles() -> list[str]:
    return [str(p) for d in PIDFILE_DIRS if d.is_dir() for p in d.glob("*.pid") if _alive_pidfile(p)]


def _alive_pidfile(path: Path) -> bool:
    try:
        return start_time(int(path.read_text().strip())) >= 0
    except (OSError, ValueError):
        return False


def ensure_installed(progress: Progress = _quiet) -> list[str]:
    """Install what is missing of OVN, with no service started in the root namespace (a
    temporary policy-rc.d refusing every start, removed only if we created it); then check that
    no OVS or OVN daemon runs there, stopping the packages' services if some do. The packages
    installed now (none: all were there)."""
    missing = [p for p in PACKAGES if not installed(p)]
    if missing:
        progress(f"installing {' '.join(missing)}")
        created = False
        if not POLICY_RC.exists():
            POLICY_RC.write_text("#!/bin/sh\n# bench/ovn_peer.py: no service starts while OVN installs\nexit 101\n")
            POLICY_RC.chmod(0o755)
            created = True
        try:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "update", "-qq"], env=env, check=True, capture_output=True)
            r = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env,
                               capture_output=True, text=True)
            if r.returncode:
                raise LabError(f"apt-get install {' '.join(missing)} failed: {(r.stderr or r.stdout).strip()[-2000:]}")
        finally:
            if created:
                POLICY_RC.unlink()
    if root_daemons() or _stray_pidfiles():
        for svc in SERVICES:  # as scripts/setup.sh stops frr and etcd: the lab runs its own
            subprocess.run(["sh", "-c", f"systemctl disable --now {svc} || service {svc} stop"], capture_output=True)
    left = root_daemons()
    if left or _stray_pidfiles():
        raise LabError(f"OVS/OVN daemons run in the root namespace ({left or _stray_pidfiles()}): "
                       "stop them first; this bench runs its own in namespaces")
    return missing


# -- the peer ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Vif:
    """A VM of the peer: its namespace's node name, chassis, MAC and address on ls0."""

    vm: str
    hv: str
    mac: str
    ip: str

    @property
    def node(self) -> str:
        return f"vm{self.vm}"

    @property
    def dev(self) -> str:  # the host side, in the chassis' namespace and br-int
        return f"v{self.vm}"


class OvnPeer:
    """`with OvnPeer() as ovn:` two chassis up and registered, logical switch ls0 created."""

    def __init__(self, name: str = "povn", progress: Progress = _quiet) -> None:
        self.record = Record(name=name, topology=str(Path(__file__).resolve()))
        self.progress = progress
        self.hvs = ("hv1", "hv2")
        self.controller_ctl: dict[str, Path] = {}

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> "OvnPeer":
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        down(self.record)

    @property
    def dir(self) -> Path:
        return self.record.dir

    def ns(self, node: str) -> str:
        return netns_name(self.record.name, node)

    def up(self) -> None:
        if (self.dir / "record.json").exists():
            raise LabError(f"{self.record.name!r} is already up (tenet lab down {self.record.name})")
        clash = [self.ns(n) for n in ("ul", "central", *self.hvs) if netns.exists(self.ns(n))]
        if clash:
            raise LabError(f"namespaces already exist, not ours to touch: {', '.join(clash)}")
        self.record.save()
        try:
            self._underlay()
            self._central()
            for i, hv in enumerate(self.hvs, 1):
                self._chassis(hv, i)
            self._registered()
            self.record.state = "up"
            self.record.save()
        except BaseException:
            down(self.record)
            raise

    def _add(self, node: str) -> str:
        ns = self.ns(node)
        if netns.exists(ns):
            raise LabError(f"namespace {ns} already exists, not ours to touch")
        self.record.namespaces.append(ns)
        self.record.save()
        netns.add(ns)
        for c in quiet(ns):
            netns.command(c)
        return ns

    def _delete(self, node: str) -> None:
        ns = self.ns(node)
        if ns in self.record.namespaces:
            netns.delete(ns)
            self.record.namespaces.remove(ns)
            self.record.save()

    def _daemon(self, role: str, node: str, argv: list[str], pidfile: Path, env: dict[str, str] | None = None) -> Proc:
        """Start a daemon with --detach in `node`'s namespace and record it by its pidfile."""
        r = subprocess.run(["ip", "netns", "exec", self.ns(node), *argv, "--detach", "--no-chdir", f"--pidfile={pidfile}"],
                           capture_output=True, text=True, env={**os.environ, **(env or {})})
        if r.returncode:
            raise LabError(f"{role} on {node} did not start: {(r.stderr or r.stdout).strip()}")
        pid = int(pidfile.read_text().strip())
        log = next((a.split("=", 1)[1] for a in argv if a.startswith("--log-file=")), "")
        proc = Proc(role, node, pid, start_time(pid), log)
        self.record.processes.append(proc)
        self.record.save()
        return proc

    def _underlay(self) -> None:
        ul = self._add("ul")
        netns.command(Command(ul, ("ip", "link", "add", "br0", "type", "bridge")))
        netns.command(Command(ul, ("ip", "link", "set", "br0", "up")))
        for node in ("central", *self.hvs):
            ns = self._add(node)
            netns.veth(Veth(ul, f"ul-{node}", ns, "ul0", UL_MTU))
            netns.command(Command(ul, ("ip", "link", "set", f"ul-{node}", "master", "br0", "up")))
            netns.command(Command(ns, ("ip", "link", "set", "ul0", "up")))
            # OVS reads these through AF_PACKET and cannot finish a partial checksum
            netns.command(Command(ul, ("ethtool", "-K", f"ul-{node}", "tx", "off")))
            netns.command(Command(ns, ("ethtool", "-K", "ul0", "tx", "off")))
        netns.command(Command(self.ns("central"), ("ip", "addr", "add", f"{self.address(CENTRAL)}/24", "dev", "ul0")))

    def address(self, host: int) -> str:
        return str(SUBNET.network_address + host)

    def _central(self) -> None:
        c = self.dir / "central"
        c.mkdir(parents=True, exist_ok=True)
        for db, schema in (("ovnnb_db", "ovn-nb"), ("ovnsb_db", "ovn-sb")):
            _sh("ovsdb-tool", "create", str(c / f"{db}.db"), f"/usr/share/ovn/{schema}.ovsschema")
        self._daemon("ovn-nb", "central", ["ovsdb-server", f"--log-file={c}/ovnnb_db.log", f"--unixctl={c}/ovnnb_db.ctl",
                                           f"--remote=punix:{c}/ovnnb_db.sock", f"{c}/ovnnb_db.db"], c / "ovnnb_db.pid")
        self._daemon("ovn-sb", "central", ["ovsdb-server", f"--log-file={c}/ovnsb_db.log", f"--unixctl={c}/ovnsb_db.ctl",
                                           f"--remote=punix:{c}/ovnsb_db.sock",
                                           f"--remote=ptcp:6642:{self.address(CENTRAL)}", f"{c}/ovnsb_db.db"],
                     c / "ovnsb_db.pid")
        self.nbctl("--no-wait", "init")
        self.sbctl("init")
        self._daemon("ovn-northd", "central",
                     ["ovn-northd", f"--log-file={c}/ovn-northd.log", f"--unixctl={c}/ovn-northd.ctl",
                      f"--ovnnb-db=unix:{c}/ovnnb_db.sock", f"--ovnsb-db=unix:{c}/ovnsb_db.sock"],
                     c / "ovn-northd.pid", {"OVN_RUNDIR": str(c)})

    def _chassis(self, hv: str, i: int) -> None:
        d = self.dir / hv
        d.mkdir(parents=True, exist_ok=True)
        env = {k: str(d) for k in ("OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVN_RUNDIR", "OVN_LOGDIR")}
        ip = self.address(i)
        _sh("ovsdb-tool", "create", str(d / "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema")
        self._daemon("ovsdb-server", hv, ["ovsdb-server", str(d / "conf.db"), f"--log-file={d}/ovsdb-server.log",
                                          f"--unixctl={d}/ovsdb-server.ctl", f"--remote=punix:{d}/db.sock"],
                     d / "ovsdb-server.pid", env)
        self.vsctl(hv, "--no-wait", "init")
        self.vsctl(hv, "--no-wait", "set", "Open_vSwitch", ".", f"external_ids:system-id={hv}", f"external_ids:hostname={hv}")
        self._daemon("ovs-vswitchd", hv, ["ovs-vswitchd", f"unix:{d}/db.sock", f"--log-file={d}/ovs-vswitchd.log",
                                          f"--unixctl={d}/ovs-vswitchd.ctl"], d / "ovs-vswitchd.pid", env)
        self.vsctl(hv, "--", "--may-exist", "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
                   "--", "--may-exist", "add-port", "br-phy", "ul0",
                   "--", "--may-exist", "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev",
                   "fail-mode=secure", "other_config:disable-in-band=true")
        ns = self.ns(hv)
        netns.command(Command(ns, ("ip", "link", "set", "br-phy", "mtu", str(UL_MTU), "up")))
        netns.command(Command(ns, ("ip", "addr", "add", f"{ip}/24", "dev", "br-phy")))
        self.vsctl(hv, "set", "Open_vSwitch", ".", f"external_ids:ovn-remote=tcp:{self.address(CENTRAL)}:6642",
                   "external_ids:ovn-encap-type=geneve", f"external_ids:ovn-encap-ip={ip}",
                   "external_ids:ovn-bridge=br-int", "external_ids:ovn-bridge-datapath-type=netdev")
        proc = self._daemon("ovn-controller", hv, ["ovn-controller", f"unix:{d}/db.sock",
                                                   f"--log-file={d}/ovn-controller.log"], d / "ovn-controller.pid", env)
        self.controller_ctl[hv] = d / f"ovn-controller.{proc.pid}.ctl"  # it takes no --unixctl: OVN_RUNDIR, by PID

    def _registered(self, timeout: float = 20.0) -> None:
        """Underlay reachable (which also primes OVS' tunnel ARP on br-phy), both chassis in the
        SB, ls0 created."""
        for a, b in (("hv1", 2), ("hv2", 1), ("hv1", CENTRAL)):
            netns.run(["ip", "netns", "exec", self.ns(a), "ping", "-c", "2", "-i", "0.2", "-W", "1", self.address(b)],
                      f"underlay ping from {a}")
        until(lambda: len(self.sbctl("--bare", "--columns=name", "list", "Chassis").split()) == len(self.hvs),
              "both chassis registered", timeout)
        self.nbctl("ls-add", SWITCH)
        self.progress("OVN: 2 chassis registered, ls0 created")

    # -- control ----------------------------------------------------------------------------
    def nb(self) -> str:
        return f"--db=unix:{self.dir}/central/ovnnb_db.sock"

    def nbctl(self, *args: str) -> str:
        return _sh("ovn-nbctl", self.nb(), *args)

    def sbctl(self, *args: str) -> str:
        return _sh("ovn-sbctl", f"--db=unix:{self.dir}/central/ovnsb_db.sock", *args)

    def vsctl(self, hv: str, *args: str) -> str:
        return _sh("ovs-vsctl", f"--db=unix:{self.dir}/{hv}/db.sock", *args)

    def sync(self) -> None:
        """Every chassis has caught up with the NB as it is now."""
        self.nbctl("--wait=hv", "sync")

    def vswitch_db(self, hv: str) -> Ovsdb:
        """A connection to the chassis' Open_vSwitch database (bench/ovsdb.py: timed writes)."""
        return Ovsdb(f"{self.dir}/{hv}/db.sock", "Open_vSwitch")

    def northbound(self) -> Ovsdb:
        return Ovsdb(f"{self.dir}/central/ovnnb_db.sock", "OVN_Northbound")

    def lsp_add_argv(self, name: str, vif: Vif, *options: str) -> list[str]:
        """`ovn-nbctl lsp-add` of a port with the VIF's addresses, as one command (to be timed)."""
        return ["ovn-nbctl", self.nb(), *options, "lsp-add", SWITCH, name, "--", "lsp-set-addresses", name,
                f"{vif.mac} {vif.ip}"]

    def lsp_add(self, name: str, vif: Vif, *options: str) -> None:
        if not self.nbctl("--bare", "--columns=name", "find", "Logical_Switch_Port", f"name={name}"):
            _sh(*self.lsp_add_argv(name, vif, *options))

    def lsp_del(self, name: str) -> None:
        self.nbctl("--if-exists", "lsp-del", name)

    def plug(self, vif: Vif, iface_id: str) -> None:
        """The VIF's host side into br-int with its iface-id; returns once ovs-vswitchd has it."""
        self.vsctl(vif.hv, "add-port", "br-int", vif.dev, "--", "set", "Interface", vif.dev,
                   f"external_ids:iface-id={iface_id}")

    def unplug(self, vif: Vif) -> None:
        self.vsctl(vif.hv, "--if-exists", "del-port", "br-int", vif.dev)

    def binding_chassis(self, port: str) -> str:
        return self.sbctl("--bare", "--columns=chassis", "find", "Port_Binding", f"logical_port={port}").strip()

    def binding_exists(self, port: str) -> bool:
        return bool(self.sbctl("--bare", "--columns=_uuid", "find", "Port_Binding", f"logical_port={port}").strip())

    def flows(self, hv: str) -> int:
        """OpenFlow flows in the chassis' br-int."""
        return len(_sh("ovs-ofctl", "dump-flows", f"unix:{self.dir}/{hv}/br-int.mgmt").splitlines()) - 1

    def recompute(self, hv: str) -> None:
        """ovn-controller drops a datapath it no longer needs only on a full recompute."""
        _sh("ovn-appctl", "-t", str(self.controller_ctl[hv]), "recompute")

    # -- VMs --------------------------------------------------------------------------------
    def vm(self, vif: Vif, neigh: Vif | None = None) -> None:
        """A VM namespace with its veth, configured (a static neighbour entry for `neigh`, so no
        ARP is timed); the host side up in the chassis' namespace, not yet in br-int."""
        ns = self._add(vif.node)
        netns.run(["ip", "-n", self.ns(vif.hv), "link", "add", vif.dev, "mtu", str(VM_MTU), "type", "veth", "peer",
                   "name", "eth0", "netns", ns, "mtu", str(VM_MTU)], f"wiring {vif.vm}")
        lines = [f"link set eth0 address {vif.mac}", f"addr add {vif.ip}/24 dev eth0", "link set eth0 up"]
        if neigh:
            lines.append(f"neigh replace {neigh.ip} lladdr {neigh.mac} dev eth0 nud permanent")
        batch(ns, lines)
        netns.command(Command(ns, ("ethtool", "-K", "eth0", "tx", "off")))  # it feeds OVS: full checksums
        netns.command(Command(self.ns(vif.hv), ("ip", "link", "set", vif.dev, "up")))

    def rmvm(self, vif: Vif) -> None:
        self._delete(vif.node)  # takes the veth pair with it

    def popen(self, node: str, *argv: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.ns(node), *argv], **kw)


def _sh(*argv: str) -> str:
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode:
        raise LabError(f"`{' '.join(argv)}` failed (code {r.returncode}): {(r.stderr or r.stdout).strip()}")
    return r.stdout


def batch(ns: str, lines: list[str]) -> None:
    """Several `ip` commands in one process inside `ns`."""
    r = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n", capture_output=True, text=True)
    if r.returncode:
        raise LabError(f"ip -n {ns} -batch failed: {(r.stderr or r.stdout).strip()}")


def until(pred: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise LabError(f"timed out after {timeout:.0f} s: {what}")
        time.sleep(0.005)
