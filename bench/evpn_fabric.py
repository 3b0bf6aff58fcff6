"""An EVPN fabric on this machine: FRR's BGP EVPN over kernel VXLAN, in network namespaces, for
bench/evpn_peer.py to migrate a VM on — the peer tenet's live migration is compared with.

Shaped like tests/lab/migrate.yaml: physical networks pn1 (198.19.132.0/24) and pn2
(198.19.133.0/24) are Linux bridges in their own namespaces, joined by router `r` (static
routes to the other network through it). h1..h3 sit on pn1, h4 and h5 on pn2, the
route reflector `rr` on pn1. Every host is a VTEP as FRR's EVPN guide builds one: a bridge
`br7301` holding a kernel VXLAN device (VNI 7301, its underlay address as local VTEP, dstport
4789, nolearning, bridge-port learning off) and the VMs' veth ends (learning on); zebra and
bgpd in its namespace, iBGP (AS 65073) to the route reflector in `address-family l2vpn evpn`
with `advertise-all-vni`. zebra reads the bridge's FDB and hands local MACs to bgpd (type-2
routes; a MAC learnt where another VTEP advertised it goes out with the next MAC mobility
sequence number, RFC 7432 section 15), installs remote MACs as `extern_learn` entries (a local
learn takes them over) and type-3 routes as the VXLAN device's all-zero entries (BUM by
ingress replication). The reflector runs bgpd alone (`-Z`: no zebra, nothing to install).
VMs are namespaces with a veth whose other end is in their host's bridge.

Lab safety as tenet's lab keeps it (lab/record.py): each namespace is recorded before it is
created, each daemon by its PID (started in the foreground, as the lab starts FRR), every file
under the record's directory, and `tenet.lab.lab.down(record)` — on the way out, or
`tenet lab down evpn` after a crash — removes exactly that. Nothing is found or stopped by name.
"""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from pyroute2 import IPRoute

from tenet.lab import frr, netns
from tenet.lab.lab import down
from tenet.lab.netns import LabError
from tenet.lab.plan import Command, Veth, netns_name, quiet
from tenet.lab.record import Proc, Record, start_time
from tenet.store.netns import inside
from tenet.wire.arp import gratuitous, rarp_announce

NAME = "evpn"
ASN = 65073
VNI = 7301
BRIDGE, VXLAN = f"br{VNI}", f"vx{VNI}"
NETWORKS = {"pn1": IPv4Network("198.19.132.0/24"), "pn2": IPv4Network("198.19.133.0/24")}
ROUTER = 254  # r's host part on every network
HOSTS = {"h1": ("pn1", 1), "h2": ("pn1", 2), "h3": ("pn1", 3), "h4": ("pn2", 4), "h5": ("pn2", 5)}
RR = ("pn1", 250)
UL_MTU, VM_MTU = 1600, 1500  # VXLAN's 50 bytes fit under the underlay's MTU
DAEMONS = ("zebra", "bgpd")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Vm:
    """A VM of the fabric: its namespace's node name, first host, MAC and address."""

    name: str
    host: str
    mac: str
    ip: str

    @property
    def port(self) -> str:  # the host side of its veth, in its host's bridge
        return f"v-{self.name}"


def address(net: str, host: int) -> str:
    return str(NETWORKS[net].network_address + host)


def vtep(host: str) -> str:
    return address(*HOSTS[host])


def _head(node: str, debugs: tuple[str, ...]) -> list[str]:
    """Logging to stdout (the daemon's log file); with `debugs`, millisecond timestamps too."""
    return [f"hostname {node}", "log stdout " + ("debugging" if debugs else "informational"),
            *(["log timestamp precision 3", *debugs] if debugs else []), "!"]


def zebra_conf(node: str, debug: bool = False) -> str:
    return "\n".join(_head(node, ("debug zebra vxlan", "debug zebra kernel") if debug else ())) + "\n"


def bgpd_conf(node: str, debug: bool = False) -> str:
    """A VTEP's bgpd: one iBGP session to the reflector, EVPN for every VNI zebra finds.
    Everything else as FRR ships it — duplicate address detection included, which only
    warns without `freeze`, and never counts these moves anyway: the source deletes the MAC
    when the port leaves, so each local learn starts afresh ("reset learn count 0")."""
    rr = address(*RR)
    lines = [*_head(node, ("debug bgp updates", "debug bgp zebra") if debug else ()), f"router bgp {ASN}",
             f" bgp router-id {vtep(node)}", " no bgp default ipv4-unicast", f" neighbor {rr} remote-as {ASN}",
             f" neighbor {rr} timers 3 9", f" neighbor {rr} timers connect 1", " !", " address-family l2vpn evpn",
             f"  neighbor {rr} activate", "  advertise-all-vni", " exit-address-family", "!"]
    return "\n".join(lines) + "\n"


def reflector_conf(debug: bool = False) -> str:
    rr = address(*RR)
    lines = [*_head("rr", ("debug bgp updates",) if debug else ()), f"router bgp {ASN}", f" bgp router-id {rr}",
             f" bgp cluster-id {rr}", " no bgp default ipv4-unicast"]
    for h in HOSTS:
        lines += [f" neighbor {vtep(h)} remote-as {ASN}", f" neighbor {vtep(h)} timers 3 9",
                  f" neighbor {vtep(h)} timers connect 1"]
    lines += [" !", " address-family l2vpn evpn"]
    for h in HOSTS:
        lines += [f"  neighbor {vtep(h)} activate", f"  neighbor {vtep(h)} route-reflector-client"]
    lines += [" exit-address-family", "!"]
    return "\n".join(lines) + "\n"


# Prints each FDB event (bridge or VXLAN device) for one MAC as JSON: [CLOCK_MONOTONIC — which
# every namespace shares —, "new"|"del", the VTEP it points to or ""]. Stdlib only: rtnetlink's
# neighbour group, nlmsghdr + ndmsg + attributes NDA_DST (1) and NDA_LLADDR (2).
WATCH = """
import json, socket, struct, sys, time
mac = bytes.fromhex(sys.argv[1].replace(":", ""))
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind((0, 0x4))  # RTMGRP_NEIGH
print("ready", flush=True)
while True:
    data = s.recv(1 << 16)
    now, off = time.monotonic(), 0
    while off + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, off)
        if length < 16:
            break
        if kind in (28, 29):  # RTM_NEWNEIGH, RTM_DELNEIGH
            a, attrs = off + 28, {}
            while a + 4 <= off + length:
                alen, atype = struct.unpack_from("=HH", data, a)
                if alen < 4:
                    break
                attrs[atype] = data[a + 4:a + alen]
                a += (alen + 3) & ~3
            if attrs.get(2) == mac:
                dst = socket.inet_ntoa(attrs[1]) if len(attrs.get(1, b"")) == 4 else ""
                print(json.dumps([now, "new" if kind == 28 else "del", dst]), flush=True)
        off += (length + 3) & ~3
"""


class FdbWatch:
    """FDB events for one MAC on one host, timed, for as long as it runs (bench/evpn_peer.py:
    when a peer's VTEP moved its entry, beside the probes' gap)."""

    def __init__(self, fabric: "EvpnFabric", host: str, mac: str) -> None:
        self.proc = fabric.popen(host, "python3", "-c", WATCH, mac, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            self.stop()
            raise LabError(f"the FDB watch on {host} did not start")

    def stop(self) -> list[tuple[float, str, str]]:
        self.proc.terminate()
        out, _ = self.proc.communicate(timeout=10)
        return [tuple(json.loads(line)) for line in out.splitlines() if line.startswith("[")]


class EvpnFabric:
    """`with EvpnFabric() as f:` the fabric up: every BGP session established and every VTEP
    holding the other four in its flood list (type-3 routes installed)."""

    def __init__(self, vms: tuple[Vm, ...], *, debug: bool = False, name: str = NAME,
                 progress: Progress = _quiet) -> None:
        self.record = Record(name=name, topology=str(Path(__file__).resolve()))
        self.vms = {v.name: v for v in vms}
        self.where = {v.name: v.host for v in vms}  # each VM's host now
        self.debug = debug  # FRR's debugs on, and its logs kept (bench/results/evpn-logs/)
        self.progress = progress

    # -- lifecycle ------------------------------------------------------------------------
    def __enter__(self) -> "EvpnFabric":
        self.up()
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        try:
            if kind is not None or self.debug:
                self.progress(f"FRR's logs kept in {self.keep_logs()}")
        finally:
            down(self.record)

    @property
    def dir(self) -> Path:
        return self.record.dir

    def ns(self, node: str) -> str:
        return netns_name(self.record.name, node)

    def nodes(self) -> list[str]:
        return [*NETWORKS, "r", "rr", *HOSTS, *self.vms]

    def up(self) -> None:
        if (self.dir / "record.json").exists():
            raise LabError(f"{self.record.name!r} is already up (tenet lab down {self.record.name})")
        clash = [self.ns(n) for n in self.nodes() if netns.exists(self.ns(n))]
        if clash:
            raise LabError(f"namespaces already exist, not ours to touch: {', '.join(clash)}")
        self.record.save()
        try:
            self._underlay()
            for h in HOSTS:
                self._vtep(h)
            for v in self.vms.values():
                self._vm(v)
            self._reflector()
            for h in HOSTS:
                self._frr(h)
            self._established()
            self.record.state = "up"
            self.record.save()
        except BaseException:
            self.keep_logs()
            down(self.record)
            raise

    def keep_logs(self) -> Path:
        """The daemons' logs and configs copied out of the record's directory (which `down`
        removes) into bench/results/evpn-logs/: the evidence when something failed."""
        keep = Path(__file__).parent / "results" / "evpn-logs"
        shutil.rmtree(keep, ignore_errors=True)
        keep.mkdir(parents=True)
        for path in (*self.dir.glob("*.log"), *self.dir.glob("frr-*/*.conf")):
            shutil.copy(path, keep / (f"{path.parent.name}-{path.name}" if path.suffix == ".conf" else path.name))
        return keep

    def _add(self, node: str, forward: bool = False) -> str:
        ns = self.ns(node)
        if netns.exists(ns):
            raise LabError(f"namespace {ns} already exists, not ours to touch")
        self.record.namespaces.append(ns)
        self.record.save()
        netns.add(ns)
        for c in quiet(ns, forward=forward):
            netns.command(c)
        return ns

    def _spawn(self, role: str, node: str, argv: list[str]) -> Proc:
        log = self.dir / f"{role}-{node}.log"
        with open(log, "ab") as out:
            p = subprocess.Popen(["ip", "netns", "exec", self.ns(node), *argv], stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
        proc = Proc(role, node, p.pid, start_time(p.pid), str(log))
        self.record.processes.append(proc)
        self.record.save()
        return proc

    def _dead(self) -> Proc | None:
        return next((p for p in self.record.processes if start_time(p.pid) != p.start_time), None)

    # -- the underlay -----------------------------------------------------------------------
    def _underlay(self) -> None:
        for net in NETWORKS:
            ns = self._add(net)
            batch(ns, ["link add br0 type bridge", "link set br0 up"])
        self._add("r", forward=True)
        for i, net in enumerate(NETWORKS):
            self._attach(net, "r", f"r-{net}", f"eth{i}", f"{address(net, ROUTER)}/24")
        self._add("rr")
        self._attach(RR[0], "rr", "rr", "ul0", f"{address(*RR)}/24")
        self._routes("rr", RR[0])
        for h, (net, _) in HOSTS.items():
            self._add(h)
            self._attach(net, h, h, "ul0", f"{vtep(h)}/24")
            self._routes(h, net)

    def _routes(self, node: str, net: str) -> None:
        """A route to every other network through r. Not a default route: bgpd's next-hop
        tracking ignores one unless zebra is told `ip nht resolve-via-default`, and the
        VTEPs behind the router were then left out of each other's flood lists."""
        batch(self.ns(node), [f"route add {NETWORKS[n]} via {address(net, ROUTER)}" for n in NETWORKS if n != net])

    def _attach(self, net: str, node: str, port: str, dev: str, cidr: str) -> None:
        """`node`'s `dev` wired to `net`'s bridge (its end there named `port`), addressed."""
        pn, ns = self.ns(net), self.ns(node)
        netns.veth(Veth(pn, port, ns, dev, UL_MTU))
        batch(pn, [f"link set {port} master br0 up"])
        batch(ns, [f"addr add {cidr} dev {dev}", f"link set {dev} up"])

    def _vtep(self, h: str) -> None:
        ns = self.ns(h)
        batch(ns, [f"link add {BRIDGE} type bridge",
                   f"link add {VXLAN} mtu {VM_MTU} type vxlan id {VNI} local {vtep(h)} dstport 4789 nolearning",
                   f"link set {VXLAN} master {BRIDGE}", f"link set {VXLAN} up", f"link set {BRIDGE} up"])
        netns.command(Command(ns, ("bridge", "link", "set", "dev", VXLAN, "learning", "off")))

    def _vm(self, v: Vm) -> None:
        ns = self._add(v.name)
        netns.veth(Veth(self.ns(v.host), v.port, ns, "eth0", VM_MTU))
        batch(ns, [f"link set eth0 address {v.mac}", f"addr add {v.ip}/24 dev eth0", "link set eth0 up"])
        batch(self.ns(v.host), [f"link set {v.port} master {BRIDGE} up"])

    # -- FRR ----------------------------------------------------------------------------------
    def run_dir(self, node: str) -> Path:
        return self.dir / f"frr-{node}"

    def _configs(self, node: str, confs: dict[str, str]) -> Path:
        run = self.run_dir(node)
        run.mkdir(exist_ok=True)
        for daemon, text in confs.items():
            (run / f"{daemon}.conf").write_text(text)
        for path in (run, *run.iterdir()):
            shutil.chown(path, frr.USER, frr.USER)
        return run

    def _reflector(self) -> None:
        run = self._configs("rr", {"bgpd": reflector_conf(self.debug)})
        self._spawn("bgpd", "rr", [*frr.argv("bgpd", run), "-Z"])

    def _frr(self, h: str) -> None:
        run = self._configs(h, {"zebra": zebra_conf(h, self.debug), "bgpd": bgpd_conf(h, self.debug)})
        self._spawn("zebra", h, frr.argv("zebra", run))
        self._wait_for(run / "zserv.api", "zebra", h)  # bgpd's advertise-all-vni goes to zebra
        self._spawn("bgpd", h, frr.argv("bgpd", run))

    def _wait_for(self, path: Path, role: str, node: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            dead = self._dead()
            if dead or time.monotonic() > deadline:
                who = dead or next(p for p in self.record.processes if (p.role, p.node) == (role, node))
                raise LabError(f"{who.role} on {who.node} did not create {path}; see {who.log}")
            time.sleep(0.02)

    def vtysh(self, node: str, *commands: str) -> str:
        argv = ["vtysh", "--vty_socket", str(self.run_dir(node))]
        for c in commands:
            argv += ["-c", c]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        return r.stdout

    def vtysh_json(self, node: str, command: str) -> dict:
        try:
            return json.loads(self.vtysh(node, command) or "{}")
        except json.JSONDecodeError:
            return {}

    def _established(self, timeout: float = 60.0) -> None:
        """Every VTEP's session with the reflector up and every VTEP flooding to the other four."""
        deadline = time.monotonic() + timeout
        while True:
            dead = self._dead()
            if dead:
                raise LabError(f"{dead.role} on {dead.node} exited; see {dead.log}")
            peers = self.vtysh_json("rr", "show bgp l2vpn evpn summary json").get("peers", {})
            up = sum(1 for p in peers.values() if p.get("state") == "Established")
            flooding = {h: len(self.flood_list(h)) for h in HOSTS}
            if up == len(HOSTS) and all(n == len(HOSTS) - 1 for n in flooding.values()):
                break
            if time.monotonic() > deadline:
                raise LabError(f"EVPN not up after {timeout:.0f} s: {up}/{len(HOSTS)} sessions established at the "
                               f"reflector, VTEPs in each flood list {flooding}; logs in {self.dir}")
            time.sleep(0.2)
        self.progress(f"EVPN up: {len(HOSTS)} VTEPs established with the reflector, ingress replication lists full")

    # -- the dataplane, read ----------------------------------------------------------------
    def fdb(self, host: str) -> list[dict]:
        r = subprocess.run(["bridge", "-n", self.ns(host), "-j", "fdb", "show", "br", BRIDGE], capture_output=True,
                           text=True)
        return json.loads(r.stdout or "[]")

    def flood_list(self, host: str) -> set[str]:
        """The VTEPs `host` replicates BUM frames to (its type-3 routes as zebra installed them)."""
        return {e["dst"] for e in self.fdb(host) if e.get("mac") == "00:00:00:00:00:00" and e.get("dst")}

    def where_is(self, host: str, mac: str) -> str:
        """Where `host` sends frames for `mac`: a VTEP address, 'local:<port>', or '' (flooded)."""
        entries = [e for e in self.fdb(host) if e.get("mac") == mac]
        remote = next((e["dst"] for e in entries if e.get("dst")), None)
        if remote:
            return remote
        local = next((e for e in entries if e.get("ifname") != VXLAN and "master" in e), None)
        return f"local:{local['ifname']}" if local else ""

    # -- VMs ----------------------------------------------------------------------------------
    def popen(self, node: str, *argv: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.ns(node), *argv], **kw)

    def exec(self, node: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.ns(node), *argv], capture_output=True, text=True,
                              timeout=timeout)

    def move(self, vm: str, to: str) -> float:
        """Hand the VM's port to `to` as tenet's lab does (lab/vms.py `move_port`): sockets in
        both namespaces opened first, then one request moves it, one brings it up in the
        bridge. Returns the monotonic time of the hand-over."""
        v, src = self.vms[vm], self.where[vm]
        if src == to:
            raise LabError(f"{vm} is already on {to}")
        with inside(self.ns(src)):
            here, idx = IPRoute(), socket.if_nametoindex(v.port)
        try:
            with inside(self.ns(to)):
                there, master = IPRoute(), socket.if_nametoindex(BRIDGE)
            try:
                t = time.monotonic()
                here.link("set", index=idx, net_ns_fd=self.ns(to))
                with inside(self.ns(to)):
                    idx = socket.if_nametoindex(v.port)
                there.link("set", index=idx, state="up", master=master)
            finally:
                there.close()
        finally:
            here.close()
        self.where[vm] = to
        return t

    def announce(self, vm: str) -> None:
        """A RARP and a gratuitous ARP from the VM's eth0 (lab/announce.py's frames): its new
        host's bridge learns its MAC on the port, and zebra sees it."""
        v = self.vms[vm]
        with inside(self.ns(vm)):
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        try:
            s.bind(("eth0", 0))
            s.send(rarp_announce(v.mac))
            s.send(gratuitous(v.mac, IPv4Address(v.ip)))
        finally:
            s.close()

    def versions(self) -> dict[str, str]:
        r = subprocess.run([str(frr.FRR / "bgpd"), "--version"], capture_output=True, text=True)
        return {"frr": r.stdout.splitlines()[0] if r.stdout else "", "kernel": Path("/proc/sys/kernel/osrelease").read_text().strip()}


def batch(ns: str, lines: list[str]) -> None:
    """Several `ip` commands in one process inside `ns`."""
    r = subprocess.run(["ip", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n", capture_output=True, text=True)
    if r.returncode:
        raise LabError(f"ip -n {ns} -batch failed: {(r.stderr or r.stdout).strip()}")
