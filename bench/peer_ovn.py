"""tenet beside OVN, same run, same machine: port-up → first packet at a VM on another host.

    flock /tmp/tenet-lab.lock timeout 1800 .venv/bin/python bench/peer_ovn.py \\
        [--rounds 100] [--slices 4] [--only ovn|tenet] [--out FILE]

OVN (bench/ovn_peer.py: two chassis, userspace datapath, Geneve; installed here if missing)
and tenet (bench/peer_ovn.yaml) are both up; the rounds are cut into `slices` taken by turns
(OVN, tenet, tenet, OVN, ...), so that drift in the machine's speed weighs on both alike. In
each, a VM on one host probes a sink VM on the other every millisecond from before t0, and the
sink notes the first arrival (bench/probe.py; CLOCK_MONOTONIC is shared by all namespaces;
static neighbour entries keep ARP out).

Every t0 is the moment the bench issues the operation (the commit edge, where there is one,
is in the JSON too: on 2 shared cores the reply often reaches the bench after the daemons it
woke have acted). OVN: **port-up warm** — the logical port exists, the VM is fresh each round;
t0 = the add-port transaction sent (`ovs-vsctl --no-wait add-port br-int <vif> -- set
Interface <vif> external_ids:iface-id=…`, sent by the bench itself over OVSDB's JSON-RPC,
bench/ovsdb.py; its commit is ovn-controller's cue); another port of ls0 (T) keeps the switch
on hv1. **cold** — the same with T unplugged and hv1 recomputed after each round until it
holds nothing of ls0. **lsp-add** — the VIF plugged first with a fresh iface-id; t0 = the NB
transaction `lsp-add … -- lsp-set-addresses …` sent; also by `ovn-nbctl` from its start, the
definition of the first figures (its ≈ 12 ms of start-up included). tenet: **802.1X** — VM P's
port appears on host6 behind access switch tor1 at t0 (staged under a temporary name; one
netlink request renames it, puts it in the bridge and sets it up), so authentication is
inside the figure (bench/proxy8021x.py); also the old definition (t0 after the port was set up,
some time after it was created). **attach** — NVO3: DISCOVER sent → first packet
(bench/attach_latency.py). **static** — a static VM's NIC applied to the tenancy (the
store write issued, plan computed before) → first packet (bench/static_vm.py). Pairs for the
ratios: 802.1X / OVN warm; attach / lsp-add; static / lsp-add.
Writes JSON to bench/results/peer-ovn-<stamp>.json (or --out) and prints a markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from attach_latency import latency as attach_latency, prepare, vm  # noqa: E402
from control_plane import IDLE, idle_cpu, log, share  # noqa: E402
import ovsdb  # noqa: E402
from ovn_peer import COLD_FLOWS, SWITCH, OvnPeer, Vif, ensure_installed, until  # noqa: E402
from probe import PROBER, SINK, Prober, Sink  # noqa: E402
from proxy8021x import port_up_rounds  # noqa: E402
from static_vm import StaticVm  # noqa: E402
from stats import pct  # noqa: E402
from tenet.lab.lab import Lab  # noqa: E402
from tenet.lab.netns import LabError  # noqa: E402

RELEASE = 2.0  # s: an OVN port not released by then is nudged (OvnRuns._released)

# OVN's VMs: S the sink on hv2, T keeps ls0 on hv1, P (port pA) and Q (fresh ports) probe
S = Vif("S", "hv2", "02:c8:00:00:00:01", "10.200.0.1")
T = Vif("T", "hv1", "02:c8:00:00:00:02", "10.200.0.2")
P = Vif("P", "hv1", "02:c8:00:00:00:10", "10.200.0.10")
Q = Vif("Q", "hv1", "02:c8:00:00:00:11", "10.200.0.11")  # nbctl refuses pA's address on a second port


class OvnRuns:
    """The OVN measurements on an OvnPeer: the sink VM and T in place, then rounds."""

    def __init__(self, ovn: OvnPeer) -> None:
        self.ovn = ovn
        self.lsps = 0  # fresh logical port names for lsp-add rounds
        self.nudged = 0  # releases ovn-controller left undone until a recompute (see _released)
        for v, port in ((S, "pS"), (T, "pT")):
            ovn.lsp_add(port, v)
            ovn.vm(v)
            ovn.plug(v, port)
        ovn.lsp_add("pA", P)
        ovn.sync()
        for port in ("pS", "pT"):
            until(lambda: ovn.binding_chassis(port) != "", f"{port} bound")

    def _sink(self) -> Sink:
        return Sink(self.ovn.popen(S.node, sys.executable, "-c", SINK, stdout=subprocess.PIPE, text=True))

    def _prober(self, v: Vif, rnd: str) -> Prober:
        p = Prober(self.ovn.popen(v.node, sys.executable, "-c", PROBER, S.ip, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True))
        p.go(rnd)
        return p

    def _released(self, port: str) -> None:
        """Wait until hv1 released `port` in the SB. ovn-controller 23.03 sometimes decides the
        release while its SB connection is read-only (a transaction in flight) and then, with
        nothing else happening, never writes it (log: "Releasing lport … (sb_readonly=1)"):
        after RELEASE s it is nudged with a recompute, and counted."""
        try:
            until(lambda: self.ovn.binding_chassis(port) == "", f"{port} released", RELEASE)
        except LabError:
            self.nudged += 1
            self.ovn.recompute("hv1")
            until(lambda: self.ovn.binding_chassis(port) == "", f"{port} released after a recompute")

    def _hv1_cold(self) -> None:
        self.ovn.recompute("hv1")
        self.ovn.sync()
        until(lambda: self.ovn.flows("hv1") < COLD_FLOWS, "ls0 gone from hv1")

    def portup(self, rounds: int, cold: bool, tag: str) -> dict[str, list[float]]:
        """Port-up: seconds from the add-port's commit (its OVSDB reply; and from the request
        sent) to the first packet."""
        ovn, out = self.ovn, {"from_commit": [], "from_sent": []}
        if cold:
            ovn.unplug(T)
            self._released("pT")
            ovn.sync()
            self._hv1_cold()
        sink = self._sink()
        db = ovn.vswitch_db(P.hv)
        prober: Prober | None = None
        try:
            for i in range(rounds):
                rnd = f"{tag}{i}"
                ovn.vm(P, S)
                prober = self._prober(P, rnd)
                sent, committed, res = db.transact(*ovsdb.add_port("br-int", P.dev, "pA"))
                if res[-1].get("count") != 1:
                    raise RuntimeError(f"add-port {P.dev}: no br-int in hv1's database ({res})")
                t = sink.first(rnd)
                out["from_commit"].append(t - committed)
                out["from_sent"].append(t - sent)
                prober.close()
                ovn.unplug(P)
                ovn.rmvm(P)
                self._released("pA")
                ovn.sync()
                if cold:
                    self._hv1_cold()
        finally:
            if prober:
                prober.close()
            db.close()
            sink.close()
            if cold:
                ovn.plug(T, "pT")
                ovn.sync()
                until(lambda: ovn.binding_chassis("pT") != "", "pT bound again")
        return out

    def lspadd(self, rounds: int, tag: str, cli: bool = False) -> dict[str, list[float]]:
        """lsp-add of a plugged VIF: seconds from the NB request sent (and from its commit) to
        the first packet; `cli`: by `ovn-nbctl`, from its start (and return)."""
        ovn, out = self.ovn, {"from_sent": [], "from_commit": []}
        sink = self._sink()
        db = ovn.northbound()
        prober: Prober | None = None
        try:
            for i in range(rounds):
                rnd, lsp = f"{tag}{i}", f"pb{self.lsps}"
                self.lsps += 1
                ovn.vm(Q, S)
                ovn.plug(Q, lsp)
                prober = self._prober(Q, rnd)
                if cli:
                    argv = ovn.lsp_add_argv(lsp, Q)
                    sent = time.monotonic()
                    subprocess.run(argv, check=True, capture_output=True)
                    committed = time.monotonic()
                else:
                    sent, committed, res = db.transact(*ovsdb.lsp_add(SWITCH, lsp, f"{Q.mac} {Q.ip}"))
                    if res[-1].get("count") != 1:
                        raise RuntimeError(f"lsp-add {lsp}: no {SWITCH} in the NB ({res})")
                t = sink.first(rnd)
                out["from_sent"].append(t - sent)
                out["from_commit"].append(t - committed)
                prober.close()
                ovn.lsp_del(lsp)
                ovn.unplug(Q)
                ovn.rmvm(Q)
                until(lambda: not ovn.binding_exists(lsp), f"{lsp}'s binding gone")
                ovn.sync()
        finally:
            if prober:
                prober.close()
            db.close()
            sink.close()
        return out


class TenetRuns:
    """The tenet measurements on lab bpeer: a0's TES driven by the bench, V out of the tenancy."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        prepare(lab, [vm(lab, "a0")], vm(lab, "S"))
        self.static = StaticVm(lab, "V", "S")
        self.static.prepare()

    def dot1x(self, rounds: int, staged: bool = True) -> list[float]:
        return port_up_rounds(self.lab, rounds, vm="P", sink="S", switch="tor1", staged=staged)

    def attach(self, rounds: int) -> list[float]:
        return attach_latency(self.lab, vm(self.lab, "a0"), vm(self.lab, "S"), rounds)[0]

    def static_vm(self, rounds: int) -> tuple[list[float], list[float]]:
        return self.static.rounds(rounds)


# -- the table -----------------------------------------------------------------------------------
ROWS = (  # key, label, short name, the OVN row it is compared with: every t0 is the operation issued
    ("ovn_warm", "OVN port-up, warm: add-port transaction sent → first packet", "OVN warm", None),
    ("ovn_cold", "OVN port-up, cold (ls0 not on hv1): same", "OVN cold", None),
    ("ovn_lspadd", "OVN lsp-add, VIF plugged: NB transaction sent → first packet", "OVN lsp-add", None),
    ("ovn_lspadd_cli", "OVN lsp-add by ovn-nbctl: command started → first packet", "OVN nbctl", None),
    ("tenet_8021x", "tenet 802.1X port-up: port appears → EAP-MD5 → first packet", "", "ovn_warm"),
    ("tenet_8021x_old", "tenet 802.1X, old t0: port set up after it was created", "", "ovn_warm"),
    ("tenet_attach", "tenet NVO3 attach: DISCOVER sent → first packet", "", "ovn_lspadd"),
    ("tenet_static", "tenet static VM: apply's write issued → first packet", "", "ovn_lspadd"),
)
SHORT = {key: short for key, _, short, _ in ROWS}


def dist(ms: list[float]) -> dict[str, float]:
    return {"p50": round(pct(ms, 50), 1), "p90": round(pct(ms, 90), 1), "p99": round(pct(ms, 99), 1),
            "max": round(max(ms), 1), "n": len(ms)}


def table(figures: dict[str, dict], idle: dict[str, float]) -> str:
    """The markdown table: one row per measurement, tenet's with its ratio to its OVN pair."""
    lines = ["| ms | p50 | p90 | p99 | max | n | vs | tenet/OVN p50 | p99 |", "|---|---|---|---|---|---|---|---|---|"]
    for key, label, _, vs in ROWS:
        d = figures.get(key)
        if not d:
            continue
        pair = ("", "", "")
        if vs and figures.get(vs):
            o = figures[vs]
            pair = (SHORT[vs], f"{d['p50'] / o['p50']:.2f}", f"{d['p99'] / o['p99']:.2f}")
        lines.append(f"| {label} | {d['p50']} | {d['p90']} | {d['p99']} | {d['max']} | {d['n']} | " + " | ".join(pair) + " |")
    if idle:
        lines += ["", f"Idle CPU of each lab's recorded processes over {IDLE:.0f} s, both up: "
                  + ", ".join(f"{k} {v:.3f} cores" for k, v in idle.items()) + "."]
    return "\n".join(lines)


# -- the run -------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=100, help="rounds of each measurement")
    ap.add_argument("--slices", type=int, default=4, help="turns each side gets")
    ap.add_argument("--only", choices=("ovn", "tenet"), help="one side only")
    ap.add_argument("--no-old-8021x", action="store_true", help="skip the 802.1X rounds of the old definition")
    ap.add_argument("--no-cli", action="store_true", help="skip the lsp-add rounds by ovn-nbctl (the old definition)")
    ap.add_argument("--out", type=Path, help="the JSON's path (default bench/results/peer-ovn-<stamp>.json)")
    a = ap.parse_args()
    if a.rounds < 1 or a.slices < 1:
        ap.error("--rounds and --slices must be >= 1")
    main_pid = os.getpid()
    # timeout(1)'s SIGTERM takes the labs down; a forked child (a library's helper) just leaves
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("SIGTERM: taking the labs down") if os.getpid() == main_pid
                  else os._exit(143))
    started = time.monotonic()
    raw: dict[str, list[float]] = {}
    idle: dict[str, float] = {}
    installed: list[str] = []
    sides = ("ovn", "tenet") if a.only is None else (a.only,)
    with ExitStack() as stack:
        runs: dict[str, object] = {}
        labs: dict[str, object] = {}
        if "ovn" in sides:
            installed = ensure_installed(log)
            ovn = stack.enter_context(OvnPeer(progress=log))
            runs["ovn"], labs["ovn"] = OvnRuns(ovn), ovn
            log("OVN up")
        if "tenet" in sides:
            t = time.monotonic()
            lab = stack.enter_context(Lab.load(HERE / "peer_ovn.yaml", lambda m: log(f"bpeer: {m}")))
            log(f"tenet lab up in {time.monotonic() - t:.1f} s")
            runs["tenet"], labs["tenet"] = TenetRuns(lab), lab
        idle = idle_cpu(labs)
        log(f"idle: {idle} cores")
        for s in range(a.slices):
            n = share(a.rounds, a.slices, s)
            if not n:
                continue
            for side in (sides if s % 2 == 0 else tuple(reversed(sides))):
                r = runs[side]
                if side == "ovn":
                    warm = r.portup(n, cold=False, tag=f"A{s}.")
                    lsp = r.lspadd(n, tag=f"B{s}.")
                    cold = r.portup(n, cold=True, tag=f"C{s}.")
                    got = {"ovn_warm": warm["from_sent"], "ovn_warm_commit": warm["from_commit"],
                           "ovn_lspadd": lsp["from_sent"], "ovn_lspadd_commit": lsp["from_commit"],
                           "ovn_cold": cold["from_sent"], "ovn_cold_commit": cold["from_commit"]}
                    if not a.no_cli:
                        cli = r.lspadd(n, tag=f"N{s}.", cli=True)
                        got |= {"ovn_lspadd_cli": cli["from_sent"], "ovn_lspadd_cli_return": cli["from_commit"]}
                else:
                    got = {"tenet_8021x": r.dot1x(n), "tenet_attach": r.attach(n)}
                    issued, committed = r.static_vm(n)
                    got |= {"tenet_static": issued, "tenet_static_commit": committed}
                    if not a.no_old_8021x:
                        got["tenet_8021x_old"] = r.dot1x(n, staged=False)
                for k, v in got.items():
                    raw.setdefault(k, []).extend(x * 1000 for x in v)
                log(f"slice {s} {side}: " + ", ".join(f"{k} p50 {pct([x * 1000 for x in v], 50):.1f}"
                                                    for k, v in got.items()))
        nudged = runs["ovn"].nudged if "ovn" in runs else None
    figures = {k: dist(v) for k, v in raw.items() if v}
    now = datetime.now(timezone.utc)
    ratios = {key: {"vs": vs, "p50": round(figures[key]["p50"] / figures[vs]["p50"], 3),
                    "p99": round(figures[key]["p99"] / figures[vs]["p99"], 3)}
              for key, _, _, vs in ROWS if vs and key in figures and vs in figures}
    out = {
        "date": now.isoformat(timespec="seconds"),
        "command": "python bench/peer_ovn.py " + " ".join(sys.argv[1:]),
        "code": subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"], capture_output=True,
                               text=True).stdout.strip(),
        "machine": {"cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()},
        "ovn_version": _version() if "ovn" in sides else None,
        "installed_now": installed,
        "rounds": a.rounds, "slices": a.slices,
        "idle_lab_cores": idle,
        "ovn_releases_nudged": nudged,
        "run_seconds": round(time.monotonic() - started, 1),
        "ms": figures,
        "ratios": ratios,
        "table": table(figures, idle),
        "raw_ms": {k: [round(x, 3) for x in v] for k, v in raw.items()},
    }
    dest = a.out or HERE / "results" / f"peer-ovn-{now:%Y-%m-%dT%H%M%S}.json"
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(json.dumps(out, indent=2))
    print(out["table"])
    print(f"\nwritten to {dest}", file=sys.stderr)
    return 0


def _version() -> str:
    r = subprocess.run(["ovn-nbctl", "--version"], capture_output=True, text=True)
    return r.stdout.splitlines()[0] if r.returncode == 0 and r.stdout else ""


if __name__ == "__main__":
    sys.exit(main())
