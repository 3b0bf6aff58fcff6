"""The control plane on SQLite and on etcd, side by side in one run: attach latency and the
controller-failover gap.

    flock /tmp/tenet-lab.lock timeout 1500 .venv/bin/python bench/control_plane.py \\
        [--rounds 200] [--failovers 20] [--sigterm 8] [--slices 4] [--apart]

Two labs of one topology (bench/control_plane.yaml), each with two controller replicas:
`bcp-sqlite` on a SQLite file, `bcp-etcd` on a 3-member etcd cluster with TLS and RBAC on its
management network, every agent started from its config file as its own etcd user. The work
is cut into `slices`, run on one lab then the other by turns (SQLite, etcd, etcd, SQLite, ...),
so that drift in the machine's speed weighs on both alike. A slice:

* attach latency (bench/attach_latency.py, as bench/attach.py): sequential attaches of TES a0
  on NVE h1, DISCOVER -> first packet at S on h2; then the baseline, EAP-MD5 logins by pyrad
  from h1 straight at the lab's FreeRADIUS (the RADIUS exchange alone);
* failovers: endpoints churn on h3 every 20 ms (VN n2, which no other host implements); the
  leading replica is signalled by its recorded PID — SIGKILL, and SIGTERM as the baseline that
  waits for no lease — and timed as bench/failover.py times it (gap()); the lab then restarts
  the replica, which must come back as a follower. Per round, for h1 and h2: did their
  generation change, and how often did their agent apply ops ("generation N: applied K ops").

By default both labs stay up and the one not measured idles; what an idle lab costs the other
is measured first (CPU of each lab's processes over IDLE seconds). `--apart` brings each lab
up for its slice and down after it instead (slower: an up per slice). The figures are the
ratios etcd / SQLite. Writes JSON to bench/results/.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

from attach_latency import latency as attach_latency, prepare, vm
from failover import by_signal, gap
from stats import summary
from tenet.controller.hold import HOLD
from tenet.controller.leadership import KEEPALIVE, TTL
from tenet.lab import etcd
from tenet.lab.churn import endpoint_churn
from tenet.lab.control import Control, StoreKind
from tenet.lab.lab import Lab
from tenet.lab.record import Record
from tenet.model.load import load_file
from tenet.store import published
from tenet.store.base import Store
from tenet.store.open import open_store

HERE = Path(__file__).parent
TOPOLOGY = HERE / "control_plane.yaml"
CONTROLS = {"sqlite": Control(StoreKind.SQLITE, 0, 2), "etcd": Control(StoreKind.ETCD, 3, 2)}
TES, SINK = "a0", "S"
CHURN_HOST, CHURN_VN = "h3", "n2"
QUIET = ("h1", "h2")  # hosts whose tables the churn does not touch
IDLE = 10.0  # s of an idle lab's CPU, measured
DIRECT = 50  # direct RADIUS logins per slice
RADIUS = r"""
import json, sys, time
from tenet.aaa.radius import RadiusClient
ip, secret, user, password, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
c = RadiusClient(ip, secret, 1812)
took = []
for _ in range(n):
    t0 = time.monotonic()
    assert c.eap_md5_login(user, password).code == "accept"
    took.append(time.monotonic() - t0)
print(json.dumps(took))
"""


def log(msg: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {msg}", file=sys.stderr, flush=True)


def until(what: str, pred: Callable[[], object], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {seconds:.0f} s waiting for {what}")
        time.sleep(0.02)


def new_lab(store: str) -> Lab:
    intent = load_file(TOPOLOGY)
    return Lab(replace(intent, name=f"bcp-{store}"), str(TOPOLOGY), lambda m: log(f"bcp-{store}: {m}"), CONTROLS[store])


@contextmanager
def running(store: str) -> Iterator[tuple[Lab, Store]]:
    """A lab up and ready to measure (its TES attached once, then driven by the bench), and
    its store opened as root; down on the way out."""
    lab = new_lab(store)
    t0 = time.monotonic()
    with lab:
        log(f"bcp-{store} up in {time.monotonic() - t0:.1f} s")
        prepare(lab, [vm(lab, TES)], vm(lab, SINK))
        db = open_store(lab.store_url)
        try:
            yield lab, db
        finally:
            db.close()


# -- attach latency -------------------------------------------------------------------------
def attach_slice(lab: Lab, rounds: int) -> dict[str, list[float]]:
    """Milliseconds: DISCOVER -> first packet, DISCOVER -> AUTH_RESULT, and direct logins; on
    etcd, which member led the raft group (every process talks to etcd1, the first in its URL,
    while it answers: a follower forwards each write to the leader)."""
    raft_leader = etcd.leader(lab.etcd_status()) if lab.plan.management else None
    first, auth = attach_latency(lab, vm(lab, TES), vm(lab, SINK), rounds)
    tes = vm(lab, TES)
    secret = (lab.record.dir / "radius.secret").read_text().strip()
    r = lab.exec(tes.host, sys.executable, "-c", RADIUS, lab.plan.aaa[0].ip, secret, tes.nics[0].identity,
                 tes.nics[0].password, str(DIRECT), timeout=60)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return {"first_packet": [x * 1000 for x in first], "auth_result": [x * 1000 for x in auth],
            "direct_login": [x * 1000 for x in json.loads(r.stdout)], "raft_leader": raft_leader}


# -- failover --------------------------------------------------------------------------------
def generation(db: Store, host: str) -> int:
    return published.read(db, host).generation


def applied(lab: Lab, host: str) -> int:
    """How many passes of the host's agent changed its kernel (it logs each one that did)."""
    return Path(lab.process("agent", host).log).read_text().count(": applied ")


def failover_round(lab: Lab, db: Store, sig: signal.Signals) -> dict:
    """Signal the leader under churn on h3, time the successor's first publication, restart the
    signalled replica as a follower; what h1 and h2 did meanwhile."""
    old = lab.leader()
    if old is None:
        raise RuntimeError(f"{lab.name}: no controller leads")
    new = next(c for c in lab.controllers if c != old)
    before = {h: (generation(db, h), applied(lab, h)) for h in QUIET}
    vn = lab.intent.vn(CHURN_VN)
    with endpoint_churn(lab.store_url, CHURN_HOST, vn.name, vn.vnid, every=0.02) as churn:
        until("the churn under way", lambda: churn.writes >= 5, 10)
        time.sleep(random.uniform(0.5, 0.5 + KEEPALIVE))  # the signal lands anywhere between two renewals
        times = gap(db, churn, CHURN_HOST, old, new, lambda: lab.stop_process("controller", old, sig, wait=False))
        time.sleep(0.5)  # the new leader publishes more churn: h1 and h2 must still see nothing
    lab.wait_converged(30)  # the churn's reports deleted and published; every agent applied
    controller_log = Path(lab.process("controller", old).log)
    offset = controller_log.stat().st_size
    lab.restart_controller(old)
    until(f"{old} following {new}", lambda: f"{old}: following {new}".encode() in controller_log.read_bytes()[offset:])
    quiet = {}
    for h in QUIET:
        g, n = before[h]
        quiet[h] = {"generation": [g, generation(db, h)], "applied": applied(lab, h) - n}
    return {"store": lab.control.store.value, "signal": sig.name, "old": old, "new": new, **times, "quiet_hosts": quiet}


def reprogrammed(rounds: list[dict]) -> int:
    """Rounds in which an agent applied ops although its host's tables kept their generation."""
    return sum(any(q["applied"] and q["generation"][0] == q["generation"][1] for q in r["quiet_hosts"].values())
               for r in rounds)


# -- what an idle lab costs ------------------------------------------------------------------
class Recorded(Protocol):
    record: Record  # a Lab, or bench/ovn_peer.py's OvnPeer


def cpu_seconds(lab: Recorded) -> float:
    """CPU time so far of the lab's recorded processes and all their descendants."""
    parent, cpu = {}, {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            f = stat[stat.rindex(")") + 2:].split()
            parent[int(d.name)], cpu[int(d.name)] = int(f[1]), (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    roots = {p.pid for p in lab.record.processes}
    total = 0.0
    for pid in cpu:
        p = pid
        while p > 1 and p not in roots:
            p = parent.get(p, 0)
        if p in roots:
            total += cpu[pid]
    return total


def idle_cpu(labs: dict[str, Recorded]) -> dict[str, float]:
    """Cores each lab takes while nobody uses it, over the same IDLE seconds."""
    start = {k: cpu_seconds(lab) for k, lab in labs.items()}
    time.sleep(IDLE)
    return {k: round((cpu_seconds(lab) - start[k]) / IDLE, 4) for k, lab in labs.items()}


# -- the run ---------------------------------------------------------------------------------
def share(total: int, parts: int, i: int) -> int:
    q, r = divmod(total, parts)
    return q + (i < r)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200, help="attaches per store")
    ap.add_argument("--failovers", type=int, default=20, help="SIGKILLed leaders per store")
    ap.add_argument("--sigterm", type=int, default=8, help="SIGTERMed leaders per store (the baseline)")
    ap.add_argument("--slices", type=int, default=4, help="turns each store gets")
    ap.add_argument("--apart", action="store_true", help="one lab up at a time, each up for its slice")
    a = ap.parse_args()
    if a.slices < 1 or min(a.rounds, a.failovers, a.sigterm) < 0 or a.rounds + a.failovers + a.sigterm == 0:
        ap.error("--slices must be >= 1 and the counts >= 0, not all 0")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("SIGTERM: taking the labs down"))  # (timeout(1)'s: the labs go down)
    started = time.monotonic()
    attach: dict[str, list[dict]] = {"sqlite": [], "etcd": []}
    rounds: list[dict] = []
    idle: dict[str, float] = {}
    with ExitStack() as stack:
        up: dict[str, tuple[Lab, Store]] = {}
        if not a.apart:
            for store in CONTROLS:
                up[store] = stack.enter_context(running(store))
            idle = idle_cpu({k: lab for k, (lab, _) in up.items()})
            log(f"idle: {idle} cores")
        for s in range(a.slices):
            for store in (("sqlite", "etcd") if s % 2 == 0 else ("etcd", "sqlite")):
                with ExitStack() as slice_stack:
                    lab, db = up[store] if not a.apart else slice_stack.enter_context(running(store))
                    n = share(a.rounds, a.slices, s)
                    if n:
                        attach[store].append(attach_slice(lab, n))
                        log(f"{store} slice {s}: attach p50 {summary(attach[store][-1]['first_packet'])['p50']} ms")
                    kills = [signal.SIGKILL] * share(a.failovers, a.slices, s) + [signal.SIGTERM] * share(a.sigterm, a.slices, s)
                    if kills:
                        time.sleep(HOLD + 1)  # the attach's VN instance hold on h1 runs out before the first signal
                        lab.wait_converged(30)
                    for sig in sorted(kills, key=lambda _: random.random()):
                        r = failover_round(lab, db, sig)
                        rounds.append(r)
                        log(json.dumps(r))
    out = result(a, attach, rounds, idle, time.monotonic() - started)
    dest = HERE / "results"
    dest.mkdir(exist_ok=True)
    (dest / f"control-plane-{out['date'][:19].replace(':', '')}.json").write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "rounds"}, indent=2))
    return 0


def result(a: argparse.Namespace, attach: dict[str, list[dict]], rounds: list[dict], idle: dict[str, float],
           seconds: float) -> dict:
    out: dict = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/control_plane.py " + " ".join(sys.argv[1:]),
        "code": subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip(),
        "machine": {"cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()},
        "layout": "apart" if a.apart else "together",
        "labs": {k: c.to_dict() for k, c in CONTROLS.items()},
        "idle_lab_cores": idle,
        "run_seconds": round(seconds, 1),
    }
    if a.rounds:
        figures = {}
        for store, slices in attach.items():
            ms = {m: [x for sl in slices for x in sl[m]] for m in ("first_packet", "auth_result", "direct_login")}
            figures[store] = {"rounds": len(ms["first_packet"]),
                              "attach_to_first_packet_ms": summary(ms["first_packet"]),
                              "discover_to_auth_result_ms": summary(ms["auth_result"]),
                              "direct_freeradius_login_ms": summary(ms["direct_login"], 2),
                              "first_packet_p50_per_slice_ms": [summary(sl["first_packet"])["p50"] for sl in slices],
                              **({"etcd_raft_leader_per_slice": [sl["raft_leader"] for sl in slices]} if store == "etcd" else {})}
        sq, et = figures["sqlite"]["attach_to_first_packet_ms"], figures["etcd"]["attach_to_first_packet_ms"]
        out["attach"] = {
            **figures,
            "ratio_etcd_to_sqlite_p50": round(et["p50"] / sq["p50"], 3),
            "ratio_etcd_to_sqlite_p99": round(et["p99"] / sq["p99"], 3),
            "ratio_etcd_to_sqlite_p50_per_slice": [round(e / q, 3) for e, q in zip(figures["etcd"]["first_packet_p50_per_slice_ms"],
                                                                                   figures["sqlite"]["first_packet_p50_per_slice_ms"])],
        }
    if rounds:
        seconds_by = {store: by_signal([r for r in rounds if r["store"] == store]) for store in CONTROLS}
        kill = {store: s.get("SIGKILL", {}).get("published") for store, s in seconds_by.items()}
        out["failover"] = {
            "lease_ttl_s": TTL, "keepalive_s": KEEPALIVE, "target_s": 3.0,
            "seconds": seconds_by,
            "sigkill_p99_within_target": {k: v is not None and v["p99"] < 3.0 for k, v in kill.items()},
            "ratio_etcd_to_sqlite_sigkill_published_p50": round(kill["etcd"]["p50"] / kill["sqlite"]["p50"], 3)
            if kill["etcd"] and kill["sqlite"] else None,
            "sigkill_published_p50_over_ttl": {k: round(v["p50"] / TTL, 3) for k, v in kill.items() if v},
            "rounds_where_an_unchanged_host_applied_ops": {k: reprogrammed([r for r in rounds if r["store"] == k]) for k in CONTROLS},
        }
    out["rounds"] = rounds
    return out


if __name__ == "__main__":
    sys.exit(main())
