"""A whole emulated datacenter on one machine: `with Lab.load(path) as lab: lab.exec(...)`."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from tenet.aaa.config import render
from tenet.aaa.server import FreeRadius
from tenet.agent.config import Accounting, config_for, render as render_config
from tenet.exposition import Listen
from tenet.lab import etcd, frr, metrics, netns, policy, supplicant
from tenet.lab.control import Control, control_of
from tenet.lab.converge import wait_converged
from tenet.lab.etcd import MemberStatus
from tenet.lab.pki import Pki, issue, passwords as new_passwords
from tenet.lab.frr import RouterConfig
from tenet.lab.netns import LabError
from tenet.hypervisor.follow import VmChanges, follow, unfollowable, vm_changes, wait_tables
from tenet.hypervisor.freezer import Freezer
from tenet.hypervisor.manager import Hypervisor, Routers
from tenet.lab.eap_pki import EapPki, issue_eap, sign_client
from tenet.lab.plan import LabPlan, plan
from tenet.lab.users import dynauth_argv, session_changes
from tenet.lab.liveness import alive
from tenet.lab.record import Proc, Record, start_time
from tenet.lab.supervision import ROLE as SUPERVISOR, Supervision, current
from tenet.lab.unit import Phase
from tenet.model.load import load_file
from tenet.model.tenancy import EapMethod, Intent, Join, Nic
from tenet.lab.vms import LabVms
from tenet.store import inventory, keys, published, rbac
from tenet.store.inventory import HostView
from tenet.store.open import open_store
from tenet.store.apply import ApplyPlan, apply
from tenet.store.intent import read_intent, write_intent
from tenet.store.records import AdmissionReady, AgentStatus, EndpointReport, Leader

Progress = Callable[[str], None]
RADIUS_PORT = 1812
UNDERLAY = "198.18.0.0/15"  # RADIUS clients: the agents, from their underlay addresses


def _quiet(_: str) -> None:
    pass


class Lab:
    def __init__(self, intent: Intent, topology: str, progress: Progress = _quiet, control: Control = Control()) -> None:
        policy.check(intent, topology)
        self.intent = intent
        self.control = control
        self.plan: LabPlan = plan(intent, control)
        self.topology = topology
        self.progress = progress
        self.record = Record(name=intent.name, topology=topology, control=control.to_dict())
        if self.plan.management is not None:  # the operator's view: root, from the bridge's namespace
            self.record.store = etcd.client_url(self.plan.etcd_nodes(), self.pki, rbac.ROOT, self.plan.management.netns)

    @classmethod
    def load(cls, path: str | Path, progress: Progress = _quiet) -> "Lab":
        """Validate the topology file; nothing is created until `up` (or `with`)."""
        intent = load_file(path)
        return cls(intent, str(Path(path).resolve()), progress, control_of(yaml.safe_load(Path(path).read_text()), str(path)))

    @property
    def name(self) -> str:
        return self.intent.name

    @property
    def controllers(self) -> list[str]:
        """The controller replicas' nodes (and names in the leader record): controller1..N."""
        return [f"controller{i}" for i in range(1, self.control.controllers + 1)]

    @property
    def store_url(self) -> str:
        """The store as tools in the root namespace (tests, the CLI) reach it, as root."""
        return self.record.store_url

    @property
    def pki(self) -> Pki:
        """With store: etcd, the lab's CA, certificates and passwords (lab/pki.py)."""
        return Pki(self.record.dir / "pki")

    def store_url_for(self, user: str) -> str:
        """The store URL a control-plane process starts with: on etcd, as etcd user `user`
        (its certificate and password) over its own management interface; else the SQLite file."""
        if self.plan.management is None:
            return self.store_url
        return etcd.client_url(self.plan.etcd_nodes(), self.pki, user)

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "Lab":
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def up(self, timeout: float = 60.0) -> None:
        """Build everything; on any failure remove what was built and re-raise."""
        if (self.record.dir / "record.json").exists():
            raise LabError(f"lab {self.name!r} is already up (tenet lab down {self.name})")
        clash = [n.netns for n in self.plan.nodes if netns.exists(n.netns)]
        if clash:
            raise LabError(f"namespaces already exist, not ours to touch: {', '.join(clash)}")
        self.record.save()
        try:
            self._start_supervisor()
            self._build()
            self._start()
            self.wait_routed(timeout)
            self.wait_converged(timeout)
            self.start_tes()
            self.start_proxies()
            self.start_supplicants()
            self.record.state = "up"
            self.record.save()
        except BaseException:
            self.down()
            raise

    def _build(self) -> None:
        p = self.plan
        self.progress(f"creating {len(p.nodes)} namespaces")
        for n in p.nodes:
            self.record.namespaces.append(n.netns)
            self.record.save()
            netns.add(n.netns)
        self.progress(f"wiring {len(p.veths)} links")
        for v in p.veths:
            netns.veth(v)
        for c in p.commands:
            netns.command(c)

    @property
    def supervision(self) -> Supervision:
        return Supervision(self.record.dir)

    def _start_supervisor(self, timeout: float = 10.0) -> None:
        """The lab's supervisor (lab/supervisor.py): it starts every other process, as their
        parent, and restarts those that fail, after `up` has returned too."""
        log = self.record.dir / "supervisor.log"
        argv = [sys.executable, "-m", "tenet.lab.supervisor", "--dir", str(self.record.dir)]
        with open(log, "ab") as out:
            p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.record.processes.append(Proc(SUPERVISOR, self.name, p.pid, start_time(p.pid), str(log)))
        self.record.save()
        deadline = time.monotonic() + timeout
        while not (self.record.dir / "supervisor.sock").exists():
            if p.poll() is not None or time.monotonic() > deadline:
                raise LabError(f"the lab's supervisor did not start; see {log}")
            time.sleep(0.01)

    def _spawn(self, role: str, node: str, argv: list[str], netns_name: str | None = None,
               serves: Listen | None = None) -> Proc:
        """Started by the supervisor. `serves`: where the process serves its metrics (its argv
        says so too), recorded with it."""
        log = self.record.dir / f"{role}-{node}.log"
        full = (["ip", "netns", "exec", netns_name] if netns_name else []) + argv
        st = self.supervision.start(role, node, full, str(log), order=len(self.record.processes),
                                    metrics=serves.url if serves else "", netns=netns_name or "")
        proc = Proc(role, node, st.pid, st.start_time, str(log), serves.url if serves else "", netns_name or "")
        self.record.processes.append(proc)
        self.record.save()
        return proc

    def _start(self) -> None:
        if self.plan.management is not None:
            self._start_etcd()
        store = open_store(self.store_url)
        write_intent(store, self.intent)
        store.close()
        n = self.control.controllers
        self.progress("starting the controller" if n == 1 else f"starting {n} controller replicas")
        for name in self.controllers:
            self._start_controller(name)
        for r in self.plan.routers:
            self._start_router(r)
        if self.plan.aaa:
            self._start_radius()
        for h in self.intent.fabric.hosts:
            self.progress(f"starting agent on {h.name}" + (" (access switch)" if h.switch else ""))
            self._spawn("agent", h.name, self._agent_argv(h.name), self.plan.node(h.name).netns, self._agent_metrics)

    def _start_controller(self, name: str) -> Proc:
        """Replica `name` (controller1..N) against the store, in its own namespace on etcd."""
        where = self.plan.controller_nodes()[self.controllers.index(name)].netns if self.plan.management else None
        listen = metrics.listen_for(metrics.CONTROLLER_PORT, where)
        argv = [sys.executable, "-m", "tenet.controller.main", "--store", self.store_url_for(rbac.CONTROLLER), "--name", name,
                "--metrics", f"{listen.addr}:{listen.port}"]
        return self._spawn("controller", name, argv, where, listen)

    def restart_controller(self, name: str) -> Proc:
        """Start replica `name` again (killed, say): its recorded process is stopped by PID and
        forgotten first. It campaigns, and follows while another replica leads."""
        if name not in self.controllers:
            raise LabError(f"no controller replica {name!r} in lab {self.name!r} (replicas: {', '.join(self.controllers)})")
        self._forget("controller", name)
        return self._start_controller(name)

    def _start_etcd(self, timeout: float = 30.0) -> None:
        """Certificates and passwords, the members, then RBAC: every role, and auth on."""
        members = self.plan.etcd_nodes()
        roles = rbac.roles(self.intent.fabric)
        users = rbac.users(roles)
        self.progress(f"issuing etcd certificates: {len(members)} members, {len(users)} users")
        issue(self.pki, {m.name: str(m.ip.ip) for m in members}, users)
        passwords = new_passwords(self.pki, users)
        for m in members:
            self._spawn("etcd", m.name, etcd.member_argv(m, members, self.pki, self.record.dir / "etcd", f"tenet-{self.name}"), m.netns)
        self.wait_etcd(timeout)
        store = open_store(self.store_url)
        try:
            rbac.apply(store, roles, passwords)
        finally:
            store.close()
        self.progress(f"etcd: {len(members)} members healthy, auth on, {len(roles)} roles")

    def etcd_status(self) -> list[MemberStatus]:
        """Each etcd member's own view (its id, the leader it follows), asked as root."""
        assert self.plan.management is not None, "the lab's store is not etcd"
        return etcd.statuses(self.plan.etcd_nodes(), self.pki, rbac.ROOT, self.plan.management.netns)

    def wait_etcd(self, timeout: float = 30.0) -> None:
        """Until every member answers and all follow one leader among them."""
        deadline = time.monotonic() + timeout
        while not etcd.healthy(status := self.etcd_status()):
            dead = self._dead()
            if dead:
                raise LabError(f"{dead.role} on {dead.node} exited; see {dead.log}")
            if time.monotonic() > deadline:
                raise LabError(f"etcd not healthy after {timeout:.0f}s: " + ", ".join(
                    f"{s.name} {'no answer' if s.id is None else f'leader {s.leader}'}" for s in status)
                    + f"; see {self.record.dir}/etcd-*.log")
            time.sleep(0.1)

    def start_proxies(self) -> None:
        """Hosts behind access switches start vouching for their VMs once the switches serve.
        A proxy recorded earlier is stopped (by its PID) and forgotten first."""
        for x in self.intent.fabric.proxies:
            self._forget("proxy", x.name)
            self.progress(f"starting the 802.1X proxy on {x.name} (behind {x.switch})")
            listen = metrics.listen_for(metrics.PROXY_PORT, self.plan.node(x.name).netns)
            argv = [sys.executable, "-m", "tenet.agent.proxy_main", "--host", x.name, "--store", self._agent_store_url(x.name),
                    "--metrics", f"{listen.addr}:{listen.port}"]
            if self.plan.aaa and self.eap_pki.ca.exists():
                argv += ["--ca", str(self.eap_pki.ca)]  # its VMs' PEAP and TTLS check the server with it
            self._spawn("proxy", x.name, argv, self.plan.node(x.name).netns, listen)

    def start_supplicants(self, only: str | None = None) -> None:
        """Each server on a switch port (or only `only`) runs wpa_supplicant, driver wired, from
        a configuration written into the lab's directory: it authenticates itself to its
        switch. One recorded earlier is stopped (by its PID) and forgotten first."""
        pki = self.eap_pki
        for s in self.intent.servers:
            if not s.on_switch or only not in (None, s.name):
                continue
            self._forget("supplicant", s.name)
            nic = s.nic
            creds = supplicant.Credentials(str(pki.ca), str(pki.client_cert(nic.identity)), str(pki.client_key(nic.identity))) \
                if nic.method is EapMethod.TLS else supplicant.Credentials(str(pki.ca))
            conf, ctrl = self.supplicant_conf(s.name), self.supplicant_dir(s.name)
            conf.write_text(supplicant.render(supplicant.config_for(s, str(ctrl), creds)))
            conf.chmod(0o600)  # it holds the server's password
            ctrl.parent.mkdir(mode=0o700, exist_ok=True)  # wpa_supplicant makes its own directory, not the parents
            self.progress(f"starting wpa_supplicant in server {s.name} ({nic.method.value}, on {s.switch})")
            self._spawn("supplicant", s.name, supplicant.argv(conf), self.netns(s.name))
            self._wait_for(ctrl / supplicant.NIC, "supplicant", s.name)  # it runs: its control socket is there

    def supplicant_dir(self, server: str) -> Path:
        """The control sockets of a server's wpa_supplicant: `wpa_cli -p <this>`."""
        return self.record.dir / "wpa" / server

    def supplicant_conf(self, server: str) -> Path:
        return self.record.dir / f"supplicant-{server}.conf"

    def wpa_cli(self, server: str, *command: str) -> str:
        """wpa_cli in a server's namespace against its supplicant, e.g. wpa_cli("S", "status")."""
        return self.exec(server, *supplicant.cli(str(self.supplicant_dir(server)), *command), timeout=15).stdout

    def _agent_store_url(self, host: str) -> str:
        """What a host's agent (or 802.1X proxy) is told of the store: on etcd, its own user
        and certificate, reaching the members over the host's management interface."""
        return self.store_url_for(rbac.agent_user(host))

    @property
    def _agent_metrics(self) -> Listen:
        """Every agent's: the loopback of its host's namespace (lab/metrics.py)."""
        return Listen(metrics.LOOPBACK, metrics.AGENT_PORT)

    def _agent_argv(self, host: str) -> list[str]:
        """An agent starts from its config file, as on a real host (docs/agent.md)."""
        config = config_for(self.intent.fabric.host(host), self._agent_store_url(host),
                            ",".join(f"{a.ip}:{RADIUS_PORT}" for a in self.plan.aaa),
                            str(self.record.dir / "radius.secret") if self.plan.aaa else "", self.control.fast_lane,
                            f"{self._agent_metrics.addr}:{self._agent_metrics.port}",
                            accounting=Accounting(port=Accounting.port if self.control.accounting else 0,
                                                  interim=self.control.interim, interim_min=self.control.interim_min))
        path = self.record.dir / f"agent-{host}.toml"
        path.write_text(render_config(config))
        return [sys.executable, "-m", "tenet.agent.main", "--config", str(path)]

    @property
    def eap_pki(self) -> EapPki:
        """The lab's EAP certificates (lab/eap_pki.py): issued at up, gone with the lab."""
        return EapPki(self.record.dir / "eap")

    def radius_dir(self, server: str) -> Path:
        """A FreeRADIUS server's config and run directory (its `detail` accounting file too)."""
        return self.record.dir / "radius" / server

    def _start_radius(self, only: str | None = None) -> None:
        """A real FreeRADIUS per AAA server, each with a private config, reachable over the
        underlay; the EAP certificates are issued once (a restart keeps them)."""
        path = self.record.dir / "radius.secret"  # the agents hold it: a restart keeps it
        secret = path.read_text().strip() if path.exists() else secrets.token_hex(16)
        path.write_text(secret + "\n")
        if not self.eap_pki.ca.exists():
            issue_eap(self.eap_pki, [u.name for u in self.intent.aaa])
        for a in self.plan.aaa:
            if only not in (None, a.name):
                continue
            run_dir = self.radius_dir(a.name)
            server = FreeRadius(run_dir, render(self.intent.aaa, secret, a.ip, RADIUS_PORT, [UNDERLAY], str(run_dir),
                                                str(self.eap_pki.dir)))
            server.write()
            server.check()
            self.progress(f"starting FreeRADIUS {a.name} at {a.ip}:{RADIUS_PORT}")
            self._spawn("radius", a.name, server.argv(), a.netns)

    def start_tes(self, only: str | None = None) -> None:
        """Each NIC with `join: discover` runs tenet-tes in its VM (or only in VM `only`): it
        attaches itself. A TES recorded earlier is stopped (by its PID) and forgotten first."""
        for vm in self.intent.vms:
            for i, nic in enumerate(vm.nics):
                if nic.join is Join.DISCOVER and only in (None, vm.name):
                    self._forget("tes", f"{vm.name}.eth{i}")
                    self.progress(f"starting tenet-tes in {vm.name} (eth{i}, VN {nic.network})")
                    argv = [sys.executable, "-m", "tenet.tes.main", "--iface", f"eth{i}", "--vn", nic.network,
                            "--identity", nic.identity, "--password", nic.password, *self._tes_method_argv(nic)]
                    self._spawn("tes", f"{vm.name}.eth{i}", argv, self.netns(vm.name))
        hosts = {h.name: h for h in self.intent.fabric.hosts}
        for s in self.intent.servers:
            if only not in (None, s.name) or s.on_switch:
                continue
            self._forget("tes", s.name)
            self.progress(f"starting tenet-tes in server {s.name} (UDP, VN {s.nic.network})")
            argv = [sys.executable, "-m", "tenet.tes.main", "--transport", "udp", "--iface", "up0",
                    "--vn", s.nic.network, "--identity", s.nic.identity, "--password", s.nic.password,
                    *self._tes_method_argv(s.nic), "--mac", s.nic.mac, *(["--ip", str(s.nic.ip)] if s.nic.ip else []),
                    *[a for h in s.nic.nves for a in ("--nve", str(hosts[h].ip))]]
            self._spawn("tes", s.name, argv, self.netns(s.name))

    def _tes_method_argv(self, nic: Nic) -> list[str]:
        """tenet-tes's EAP method and what it needs: the lab's CA, which signed FreeRADIUS's
        certificate, and for EAP-TLS the client certificate the lab issued to its identity."""
        if nic.method is EapMethod.MD5:
            return []
        argv = ["--method", nic.method.value, "--ca", str(self.eap_pki.ca)]
        if nic.method is EapMethod.TLS:
            argv += ["--cert", str(self.eap_pki.client_cert(nic.identity)), "--key", str(self.eap_pki.client_key(nic.identity))]
        return argv

    def _forget(self, role: str, node: str) -> None:
        """Its recorded process stopped (through the supervisor: not restarted) and forgotten."""
        for old in [p for p in self.record.processes if p.role == role and p.node == node]:
            self.supervision.stop(role, node)
            self.record.processes.remove(old)

    def wait_attached(self, vm: str, nic: int = 0, timeout: float = 10.0) -> float:
        """Seconds until the controller has published the auto-attached NIC of a VM (to its
        host) or of a server (to whichever NVE admitted it) as a local destination."""
        v = next((x for x in self.intent.vms if x.name == vm), None)
        mac = v.nics[nic].mac if v else next(s.nic.mac for s in self.intent.servers if s.name == vm)
        hosts = [v.host] if v else [h.name for h in self.intent.fabric.hosts]
        start = time.monotonic()
        store = open_store(self.store_url)
        try:
            while time.monotonic() - start < timeout:
                for h in hosts:
                    tables = published.read(store, h)
                    vns = tables.vns if tables else ()
                    if any(e.destination == mac and e.port for t in vns for e in t.entries) \
                            or any(r.address == mac for t in vns for r in t.routes):
                        return time.monotonic() - start
                time.sleep(0.02)
        finally:
            store.close()
        raise LabError(f"{vm} eth{nic} not attached after {timeout:.0f}s")

    def _start_router(self, r: RouterConfig) -> None:
        """FRR's zebra, ospfd and pimd in the router's namespace, configured from the plan."""
        run = self.record.dir / f"frr-{r.name}"
        run.mkdir(exist_ok=True)
        for daemon in frr.DAEMONS:
            (run / f"{daemon}.conf").write_text(frr.CONFIGS[daemon](r))
        for path in (run, *run.iterdir()):
            shutil.chown(path, frr.USER, frr.USER)
        for daemon in frr.DAEMONS:
            self._spawn(daemon, r.name, frr.argv(daemon, run), r.netns)
            if daemon == "zebra":  # the others configure through it: a static RP given before
                self._wait_for(run / "zserv.api", daemon, r.name)  # zebra answers is refused

    def _wait_for(self, path: Path, role: str, node: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not path.exists():
            if self._dead() or time.monotonic() > deadline:
                raise LabError(f"{role} on {node} did not create {path}; see {self.process(role, node).log}")
            time.sleep(0.02)

    def wait_routed(self, timeout: float = 60.0) -> None:
        """Return when every router has its routes to every physical network, with as many
        equal-cost next hops as the graph has (OSPF converged), the rendezvous point routed, a
        PIM neighbour on every network it shares with another router, and — on the anycast RP
        routers — an established MSDP session with each other one."""
        deadline = time.monotonic() + timeout
        pending = list(self.plan.routers)
        ports = {r.name: r.ports for r in pending}
        paths, shared = frr.equal_paths(ports), frr.routers_on(ports)
        subnet = {n.name: str(n.subnet) for n in self.intent.fabric.networks}
        wants = {r.name: ({subnet[net]: n for net, n in paths[r.name].items()},
                          {p.dev for p in r.ports if len(shared[p.network]) > 1}) for r in pending}
        while pending:
            pending = [r for r in pending if not self._routed(r, *wants[r.name])]
            dead = self._dead()
            if dead:
                raise LabError(f"{dead.role} on {dead.node} exited; see {dead.log}")
            if pending and time.monotonic() > deadline:
                raise LabError(f"underlay not converged after {timeout:.0f}s: {', '.join(r.name for r in pending)}")
            if pending:
                time.sleep(0.1)
        if self.plan.routers:
            self.progress(f"underlay routed: {len(self.plan.routers)} routers (OSPF, PIM)")

    def _routed(self, r: RouterConfig, paths: dict[str, int], pim_ports: set[str]) -> bool:
        """`paths`: subnet -> equal-cost next hops it must have; `pim_ports`: ports that must
        have a PIM neighbour."""
        routes = json.loads(self.exec(r.name, "ip", "-j", "-4", "route", "show").stdout or "[]")
        have = {x["dst"]: len(x.get("nexthops", ())) or 1 for x in routes if x.get("protocol") == "ospf"}
        if any(have.get(net) != n for net, n in paths.items()):
            return False
        rp = self._vtysh(r, "show ip pim rp-info json").get(r.rp)
        if rp is None:  # FRR 8.4 may refuse a static RP it cannot route to yet: give it again
            self._vtysh(r, "configure terminal", f"ip pim rp {r.rp} {frr.MULTICAST}")
            return False
        if not all(x["iAmRP"] or x["outboundInterface"] != "Unknown" for x in rp):
            return False
        if r.anycast:  # the anycast RPs know each other's sources
            msdp = self._vtysh(r, "show ip msdp peer json")
            if not all(msdp.get(a, {}).get("state") == "established" for a in r.rp_peers if a != r.router_id):
                return False
        return pim_ports <= set(self._vtysh(r, "show ip pim neighbor json"))

    def _vtysh(self, r: RouterConfig, *commands: str) -> dict:
        argv = ["vtysh", "--vty_socket", str(self.record.dir / f"frr-{r.name}")]
        for c in commands:
            argv += ["-c", c]
        try:
            return json.loads(self.exec(r.name, *argv).stdout or "{}")
        except json.JSONDecodeError:
            return {}

    def _dead(self) -> Proc | None:
        """A process that failed for good (its start limit hit) or exited on its own, or the
        supervisor itself gone; not one stopped on purpose, nor one waiting to be restarted."""
        sup = self.supervision
        for p in self.record.processes:
            if p.role == SUPERVISOR:
                if not alive(p.pid, p.start_time):
                    return p
                continue
            s = sup.status(p.role, p.node)
            if s is not None and s.phase in (Phase.FAILED, Phase.EXITED):
                return p
        return None

    def wait_converged(self, timeout: float = 60.0) -> None:
        """Return when the controller has published every change written so far and every
        agent has applied the tables published for it (lab/converge.py)."""
        hosts = [h.name for h in self.intent.fabric.hosts]
        wait_converged(self.store_url, hosts, timeout, admission=bool(self.plan.aaa), check=self._alive)
        self.progress(f"all {len(hosts)} agents converged")

    def _alive(self) -> None:
        dead = self._dead()
        if dead:
            raise LabError(f"{dead.role} on {dead.node} exited; see {dead.log}")

    def down(self) -> None:
        """Remove exactly what was recorded: processes by PID, then namespaces by name. The
        record on disk counts too: another process (`tenet apply --lab`, `tenet api`) may
        have built VMs into this lab since."""
        try:
            ours = Record.load(self.name)
        except LookupError:
            ours = self.record
        ours.processes += [p for p in self.record.processes if p not in ours.processes]
        ours.namespaces += [n for n in self.record.namespaces if n not in ours.namespaces]
        down(ours)

    # -- use ---------------------------------------------------------------------------
    def netns(self, node: str) -> str:
        return self.plan.node(node).netns

    def exec(self, node: str, *argv: str, check: bool = False, timeout: float | None = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.netns(node), *argv], capture_output=True, text=True, check=check, timeout=timeout)

    def popen(self, node: str, *argv: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", self.netns(node), *argv], **kw)

    def process(self, role: str, node: str) -> Proc:
        """The recorded process, with the PID that serves it now (a restart changes it)."""
        return next(p for p in current(self.record) if p.role == role and p.node == node)

    def stop_process(self, role: str, node: str, sig: int = signal.SIGTERM, *, wait: bool = True) -> None:
        """Stop a recorded process on purpose, with `sig` (SIGKILL: it dies without a word, e.g.
        a crashed TES): the supervisor sends it and does not restart it (a fault the test
        inflicts stays inflicted) until the lab starts it again. A SIGTERM waits for the exit
        and kills after a grace, unless `wait` is False (a bench timing what follows the
        signal itself); another signal waits until it is sent. To test a restart, kill the
        PID behind the supervisor's back instead (os.kill(lab.process(...).pid, SIGKILL))."""
        self.process(role, node)  # recorded, or StopIteration as before
        self.supervision.stop(role, node, sig, wait=wait and sig == signal.SIGTERM)

    def leader(self) -> str | None:
        """The controller replica that leads now (its node), or None while none does."""
        store = open_store(self.store_url)
        try:
            kv = store.get(keys.controller_leader())
        finally:
            store.close()
        name = Leader.from_json(kv.value).name if kv else None
        return name if name in self.controllers else None

    def set_link(self, name: str, guarantee: str | None = None, limit: str | None = None) -> None:
        """`tenet link set` through the API: a validated edit of the stored intent."""
        from tenet.store.intent import set_link

        store = open_store(self.store_url)
        try:
            self.intent = set_link(store, name, guarantee, limit)
        finally:
            store.close()

    def mac(self, vm: str, nic: int = 0) -> str:
        """A VM NIC's MAC, as declared or generated."""
        return next(v for v in self.intent.vms if v.name == vm).nics[nic].mac

    def endpoints(self) -> dict[str, dict]:
        """The endpoint reports NVEs wrote for TESs that attached (or were authorized), by MAC,
        each read as its record and given in its JSON form."""
        store = open_store(self.store_url)
        try:
            reports = (EndpointReport.from_json(kv.value) for kv in store.range(keys.endpoints_prefix()))
            return {r.mac: r.to_dict() for r in reports}
        finally:
            store.close()

    @property
    def hypervisor(self) -> Hypervisor:
        """Create, destroy, start, stop, pause, resume, migrate and copy VMs and virtual
        routers (hypervisor/manager.py), this lab's namespaces as its backend."""
        return Hypervisor(self.store_url, LabVms(self.record), settle=self._follow, progress=self.progress)

    vms = hypervisor

    @property
    def vrouters(self) -> Routers:
        """The same, with `create` taking a VR's tenant."""
        return Routers(self.hypervisor)

    def _follow(self, intent: Intent) -> None:
        """The intent was edited through us (a VR created, say): name what it now names, and
        return once the change is live."""
        self.intent, self.plan = intent, plan(intent, self.control)
        self.wait_converged()

    # -- following the intent (`tenet apply --lab`) -----------------------------------------
    @classmethod
    def running(cls, name: str, progress: Progress = _quiet) -> "Lab":
        """A lab that is up, by its record, as its store now describes it."""
        record = Record.load(name)
        store = open_store(record.store_url)
        try:
            intent = read_intent(store)
        finally:
            store.close()
        lab = cls(intent, record.topology, progress, Control.from_dict(record.control))
        lab.record = record
        return lab

    def apply(self, change: ApplyPlan, timeout: float = 60.0) -> int | None:
        """Write a planned tenancy (store/apply.py) if the lab can follow it, then follow it;
        the revision written (None: nothing to)."""
        assert change.before is not None, "a lab's store has its fabric"
        refused = unfollowable(change.before, change.after, bool(self.plan.aaa))
        if refused:
            raise LabError(refused)
        store = open_store(self.store_url)
        try:
            rev = apply(store, change)
        finally:
            store.close()
        if rev is not None:
            self.follow(change.before, change.after, timeout)
        return rev

    def follow(self, before: Intent, after: Intent, timeout: float = 60.0) -> VmChanges:
        """The intent changed: VMs (hypervisor/follow.py), RADIUS users (lab/users.py) and TESs
        follow it; return when the agents have installed the tables it leads to."""
        changes = vm_changes(before, after)
        for vm in (*changes.removed, *changes.restart):  # their TESs: before their NICs go
            for p in [p for p in self.record.processes if p.role == "tes" and p.node.partition(".")[0] == vm]:
                self._forget("tes", p.node)
        self.record.save()
        follow(LabVms(self.record), before, after, self.progress)
        self._follow(after)
        if before.aaa != after.aaa:
            self._follow_users(before, after, timeout)
        for vm in changes.restart:
            self.start_tes(only=vm)
        wait_tables(self.store_url, before, after, timeout)
        self.wait_converged(timeout)
        return changes

    def _follow_users(self, before: Intent, after: Intent, timeout: float) -> None:
        """FreeRADIUS restarts with the new users; live sessions of changed ones are told."""
        for a in self.plan.aaa:
            self._forget("radius", a.name)
        new_users = {u.name for u in after.aaa} - {u.name for u in before.aaa}
        for user in sorted(new_users):  # a user added later gets its certificate now
            if not self.eap_pki.client_cert(user).exists():
                sign_client(self.eap_pki, user)
        self._start_radius()
        for a in self.plan.aaa:
            self._wait_for_radius(a.name, timeout)
        store = open_store(self.store_url)
        try:
            reports = [EndpointReport.from_json(kv.value) for kv in store.range(keys.endpoints_prefix())]
        finally:
            store.close()
        secret = str(self.record.dir / "radius.secret")
        primary = self.plan.aaa[0].name  # the NVEs take dynamic authorization from any of their servers
        for c in session_changes(before.aaa, after.aaa, reports):
            r = self.exec(primary, *dynauth_argv(c, str(after.fabric.host(c.nve).ip), secret))
            self.progress(f"{'disconnect' if c.disconnect else 'new rates'} for {c.mac} on {c.nve}: "
                          + ("done" if r.returncode == 0 else (r.stdout + r.stderr).strip()))

    def _wait_for_radius(self, server: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while f":{RADIUS_PORT} " not in self.exec(server, "ss", "-Hlun", f"sport = :{RADIUS_PORT}").stdout:
            if self._dead() or time.monotonic() > deadline:
                raise LabError(f"FreeRADIUS {server} did not listen again; see {self.process('radius', server).log}")
            time.sleep(0.05)

    def hosts(self) -> dict[str, HostView]:
        """Every host as `tenet hosts` shows it: registered, up or down, its tables' progress."""
        store = open_store(self.store_url)
        try:
            return {v.name: v for v in inventory.hosts(store)}
        finally:
            store.close()

    def restart_agent(self, host: str) -> Proc:
        """Stop an agent by its recorded PID and start a new one (the kernel keeps its state)."""
        self._forget("agent", host)
        return self._spawn("agent", host, self._agent_argv(host), self.netns(host), self._agent_metrics)

    def restart_radius(self, server: str, timeout: float = 10.0) -> Proc:
        """Start an AAA server's FreeRADIUS again (stopped by a test, say) with the same config,
        secret and certificates; returns once it listens."""
        if server not in {a.name for a in self.plan.aaa}:
            raise LabError(f"no AAA server {server!r} in lab {self.name!r} (servers: {', '.join(a.name for a in self.plan.aaa)})")
        self._forget("radius", server)
        self._start_radius(only=server)
        self._wait_for_radius(server, timeout)
        return self.process("radius", server)

    def restart_etcd(self, member: str) -> Proc:
        """Start a stopped etcd member again from its data directory (it rejoins the cluster)."""
        m = next(x for x in self.plan.etcd_nodes() if x.name == member)
        self._forget("etcd", member)
        argv = etcd.member_argv(m, self.plan.etcd_nodes(), self.pki, self.record.dir / "etcd", f"tenet-{self.name}")
        return self._spawn("etcd", member, argv, m.netns)


def _stop(p: Proc, grace: float = 3.0) -> None:
    """SIGTERM by recorded PID (never a recycled one), SIGKILL after the grace. A zombie
    counts as gone (reaped here when it is ours)."""
    if not alive(p.pid, p.start_time):
        _reap(p.pid)
        return  # gone, or the PID now belongs to someone else
    os.kill(p.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        _reap(p.pid)
        if not alive(p.pid, p.start_time):
            return
        time.sleep(0.02)
    if alive(p.pid, p.start_time):
        os.kill(p.pid, signal.SIGKILL)
        _reap(p.pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its parent (the supervisor, or init) reaps it


def down(record: Record) -> None:
    """The supervisor first (it stops its units, last started first, so nothing is
    restarted under our feet), then whatever recorded process still runs, by its PID now."""
    errors = []
    Freezer(record.name, record.dir).thaw_all()  # paused VMs: thawed first
    for p in [p for p in record.processes if p.role == SUPERVISOR]:
        try:
            if alive(p.pid, p.start_time):
                os.kill(p.pid, signal.SIGCONT)  # a supervisor paused (a test looking at a crash) hears SIGTERM
            _stop(p, grace=60.0)
        except OSError as e:
            errors.append(f"stopping the supervisor (pid {p.pid}): {e}")
    for p in reversed([p for p in current(record) if p.role != SUPERVISOR]):  # its last word on each PID
        try:
            _stop(p)
        except OSError as e:
            errors.append(f"stopping {p.role} {p.node} (pid {p.pid}): {e}")
    for ns in reversed(record.namespaces):
        try:
            netns.delete(ns)
        except LabError as e:
            errors.append(str(e))
    if errors:
        record.state = "down failed"
        record.save()
        raise LabError("; ".join(errors))
    shutil.rmtree(record.dir, ignore_errors=True)  # the lab's own directory: store, logs, configs it wrote
