"""The control plane at scale: the real controller and store, simulated agents, one endpoint at a time.

    .venv/bin/python bench/scale.py --hosts 1000 --vns 1000 --endpoints 10000 [--changes 200]
                                    [--stores sqlite,etcd] [--agent-procs 16] [--seed 1] [--gap 0.2]

For each store, in one run: a fresh store (a SQLite file, or a one-member etcd on loopback:
tests/unit/etcd_cluster.py) gets the synthetic fabric and tenancy (bench/synthetic.py) and all E
endpoint reports; then the real controller starts (`python -m tenet.controller.main
--instance-hold 0`: a VN instance leaves a host as soon as its last endpoint does, instead of
2 s later, so a delete is done when its MAC is gone rather than after the hold).

* full_recompute_s: from the controller's start (process launch, election included) until
  its Observed record covers the revision of the last report written, i.e. it has published
  every host's tables from all inputs (controller/observed.py); `first_pass_s` is the part after
  it held the leader key. `hosts_with_tables` is then counted through published.read.
* Then `--agent-procs` processes of simulated agents (bench/sim_agent.py), the hosts dealt
  round-robin, one thread and one store client per host watching `published.prefix(host)`
  (a blocking watch per host: inotify on SQLite, one HTTP long-poll per host on etcd),
  decoding with published.read on every wake, acknowledging each VN whose destinations
  changed over a UNIX datagram socket (host, CLOCK_MONOTONIC time, generation, VN, its MACs).
* `--changes` single changes, each after `--gap` seconds of quiet (0.2 s: the controller paces
  its passes, a gap after each up to the CPU time it used, banking up to 0.1 s of credit when
  quiet; back-to-back changes would measure that pacing, i.e. churn), alternately adding a
  report (new MAC, random host and VN) and deleting a random existing one. The bench keeps its own model of the reports: an add is
  done when every host with a member in that VN lists the new MAC in it; a delete when every
  host that had a member no longer lists it (or lost the VN). Latency: from just before the
  bench's put/delete until the last of those hosts' agents had decoded it (the agent's clock
  stamp, not the bench's receipt).
* stages_ms: each change's time split by the agents' clock stamps: until the first affected
  agent's watch returned (the store, the leader's pass and its commit), until the last one's
  returned (the wake-ups queueing for the cores), and the longest an agent then took to
  decode (its read of what the watch did not carry, and its JSON).
* bytes_written_per_change: the value bytes of every put under /tenet/hosts/ and
  /tenet/alloc/ from one change's write until it was done (and anything late, counted with
  the next change), read back from the store's own history (a watch from a revision) between
  changes, outside the timed part; averaged over the changes.
* controller_rss_mb: VmRSS of the controller process after the changes.
* cpu_ms_per_change: CPU time (user + system) the controller, the simulated agents' processes
  and etcd used during the changes, over their number (idle costs included: periodic passes,
  polls; etcd's includes serving the bench's reads of the history between changes).

Everything is bounded in time and fails with what did not arrive. Processes are stopped by
their PIDs, temporary directories removed by path (kept, with the logs, on failure). Writes
JSON to bench/results/scale-<timestamp>.json. Run it alone (flock /tmp/tenet-lab.lock).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "tests" / "unit"))  # the tests' etcd on loopback
from etcd_cluster import EtcdCluster  # noqa: E402
from stats import summary  # noqa: E402
from synthetic import Synthetic, report_key
from tenet.controller.observed import reflects
from tenet.store import keys, published
from tenet.store.base import Put, Store, follow, in_chunks
from tenet.store.open import open_store
from tenet.store.records import EndpointReport
from tenet.store.intent import write_intent

HERE = Path(__file__).parent
POLL = 0.01  # s between looks at the controller's keys
COUNTED = (keys.hosts_prefix(), keys.ROOT + "alloc/")


class Failed(RuntimeError):
    """What did not arrive in time (the message names it)."""


def log(msg: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Model:
    """The bench's own account of the reports: who has a member in which VN."""

    live: list[EndpointReport]
    members: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))

    def __post_init__(self) -> None:
        for r in self.live:
            self.members[r.vn][r.host] += 1

    def hosts(self, vn: str) -> frozenset[str]:
        return frozenset(h for h, n in self.members[vn].items() if n > 0)

    def add(self, r: EndpointReport) -> None:
        self.live.append(r)
        self.members[r.vn][r.host] += 1

    def remove_at(self, i: int) -> EndpointReport:
        r = self.live[i]
        self.live[i] = self.live[-1]
        self.live.pop()
        self.members[r.vn][r.host] -= 1
        return r


class Acks:
    """The bench's end of the agents' datagram socket."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(str(path))

    def next(self, deadline: float) -> dict | None:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        self.sock.settimeout(left)
        try:
            msg = json.loads(self.sock.recv(1 << 22))
        except TimeoutError:
            return None
        if "error" in msg:
            raise Failed(f"simulated agent of {msg['host']} failed: {msg['error']}")
        return msg

    def close(self) -> None:
        self.sock.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise Failed(f"no VmRSS for pid {pid}")


def cpu_s(pid: int) -> float:
    """User and system CPU seconds the process has used so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen, grace: float) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def load(store: Store, synth: Synthetic) -> tuple[list[EndpointReport], int]:
    """Fabric, tenancy and every report: the reports and the revision of the last write."""
    write_intent(store, synth.intent())
    reports = synth.reports()
    in_chunks(store, [Put(report_key(r), r.to_json()) for r in reports])
    return reports, store.revision()


def wait_published(store: Store, ctl: subprocess.Popen, ctl_log: Path, rev: int, timeout: float) -> tuple[float, float]:
    """Seconds from now until the leader key appears, and until Observed covers `rev`."""
    t0 = time.monotonic()
    deadline, leader = t0 + timeout, None
    while True:
        if ctl.poll() is not None:
            raise Failed(f"the controller exited ({ctl.returncode}): {ctl_log.read_text()[-2000:]}")
        if leader is None and store.get(keys.controller_leader()) is not None:
            leader = time.monotonic() - t0
        if leader is not None and reflects(store, rev):
            return leader, time.monotonic() - t0
        if time.monotonic() > deadline:
            raise Failed(f"the controller did not publish every host's tables (Observed >= revision {rev}) within {timeout} s"
                         + ("" if leader is not None else "; it never became leader"))
        time.sleep(POLL)


def one_change(store: Store, acks: Acks, model: Model, synth: Synthetic, rnd: random.Random, k: int,
               timeout: float) -> dict:
    """Make change `k` and wait until every affected host's agent has decoded it."""
    if k % 2 == 0 or not model.live:
        r = synth.report(synth.endpoints + k, synth.host(rnd.randrange(synth.hosts)), synth.vn(rnd.randrange(synth.vns)))
        model.add(r)
        kind, affected = "add", model.hosts(r.vn)
    else:
        i = rnd.randrange(len(model.live))
        kind, affected = "delete", model.hosts(model.live[i].vn)
        r = model.remove_at(i)
    t0 = time.monotonic()
    if kind == "add":
        rev = store.put(report_key(r), r.to_json())
    else:
        rev = store.delete(report_key(r))
    done: dict[str, float] = {}
    woke: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(affected):
        msg = acks.next(deadline)
        if msg is None:
            missing = sorted(affected - done.keys())
            raise Failed(f"change {k} ({kind} {r.mac} in {r.vn} on {r.host}): within {timeout} s no decode from "
                         f"{len(missing)} of {len(affected)} affected hosts' agents, e.g. {missing[:5]}")
        if "t" not in msg or msg["t"] < t0 or msg["vn"] != r.vn or msg["host"] not in affected or msg["host"] in done:
            continue
        if (r.mac in msg["macs"]) == (kind == "add"):
            done[msg["host"]], woke[msg["host"]] = msg["t"], msg["woke"]
    return {"kind": kind, "affected": len(affected), "ms": (max(done.values()) - t0) * 1000,
            "first_ms": (min(done.values()) - t0) * 1000, "first_woke_ms": (min(woke.values()) - t0) * 1000,
            "last_woke_ms": (max(woke.values()) - t0) * 1000,
            "decode_ms": max(done[h] - woke[h] for h in done) * 1000, "rev": rev}


def written(store: Store, first: int, last: int) -> dict:
    """The bytes and keys put under the counted prefixes in revisions first..last, from the
    store's history: one watch on the root (the window always holds the bench's own write, so
    it never waits for nothing), read one change at a time (a replay of a whole run can
    exceed what etcd sends in one watch response)."""
    out = {"bytes": 0, "keys": 0}
    rev = first
    while rev <= last:
        rev, events = follow(store, keys.ROOT, rev, timeout=0.0)  # the past comes all the same
        if events is None:
            raise Failed(f"the store's history from revision {first} was compacted")
        if not events:
            raise Failed(f"the store's history returned nothing for revisions {first}..{last}")
        for e in events:
            if e.revision <= last and e.kind == "put" and e.key.startswith(COUNTED):
                out["bytes"] += len(e.value or b"")
                out["keys"] += 1
    return out


def run_store(kind: str, a: argparse.Namespace, work: Path) -> dict:
    synth = Synthetic(a.hosts, a.vns, a.endpoints, a.seed)
    etcd: EtcdCluster | None = None
    ctl: subprocess.Popen | None = None
    agents: list[subprocess.Popen] = []
    acks: Acks | None = None
    store: Store | None = None
    try:
        if kind == "sqlite":
            url = f"sqlite:///{work / 'scale.db'}"
        elif kind == "etcd":
            # 100 hosts' tables in one transaction exceed the default 1.5 MiB request at 100,000
            # endpoints; nothing compacts during a run, so the quota is raised too
            etcd = EtcdCluster(1, heartbeat_ms=100, election_ms=1000,
                               extra=("--max-request-bytes", str(64 << 20), "--quota-backend-bytes", str(8 << 30)))
            url = etcd.url
        else:
            raise Failed(f"unknown store {kind!r} (sqlite or etcd)")
        store = open_store(url)
        t = time.monotonic()
        reports, rev = load(store, synth)
        load_s = time.monotonic() - t
        log(f"{kind}: loaded {len(reports)} reports in {load_s:.1f} s (revision {rev})")

        ctl_log = work / f"controller-{kind}.log"
        with open(ctl_log, "wb") as out:
            ctl = subprocess.Popen([sys.executable, "-m", "tenet.controller.main", "--store", url, "--name", "bench",
                                    "--instance-hold", "0"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        leader_s, recompute_s = wait_published(store, ctl, ctl_log, rev, a.recompute_timeout)
        with_tables = sum(published.read(store, synth.host(i)) is not None for i in range(a.hosts))
        log(f"{kind}: full recompute {recompute_s:.2f} s (leader after {leader_s:.2f} s), {with_tables}/{a.hosts} hosts have tables")

        acks = Acks(work / f"acks-{kind}.sock")
        hosts = [synth.host(i) for i in range(a.hosts)]
        t = time.monotonic()
        for p in range(a.agent_procs):
            mine = hosts[p::a.agent_procs]
            if mine:
                with open(work / f"agents-{kind}-{p}.log", "wb") as out:
                    agents.append(subprocess.Popen([sys.executable, str(HERE / "sim_agent.py"), "--store", url,
                                                    "--ack", str(work / f"acks-{kind}.sock"), *mine],
                                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        ready: set[str] = set()
        deadline = time.monotonic() + a.ready_timeout
        while len(ready) < a.hosts:
            msg = acks.next(min(deadline, time.monotonic() + 1))
            if msg is None:
                for i, p in enumerate(agents):
                    if p.poll() is not None:
                        raise Failed(f"simulated agents process {i} exited ({p.returncode}): "
                                     f"{(work / f'agents-{kind}-{i}.log').read_text()[-2000:]}")
                if time.monotonic() < deadline:
                    continue
                raise Failed(f"{a.hosts - len(ready)} simulated agents not watching within {a.ready_timeout} s, "
                             f"e.g. {sorted(set(hosts) - ready)[:5]}")
            if "ready" in msg:
                ready.add(msg["host"])
        ready_s = time.monotonic() - t
        log(f"{kind}: {a.hosts} simulated agents watching after {ready_s:.1f} s")

        model, rnd = Model(list(reports)), random.Random(a.seed + 1)
        changes = []
        def cpu_now() -> dict[str, float]:
            out = {"controller": cpu_s(ctl.pid), "agents": sum(cpu_s(p.pid) for p in agents)}
            if etcd is not None:  # the bench's reads of the history between changes count here too
                out["etcd"] = sum(cpu_s(p.pid) for p in etcd.procs)
            return out

        cpu0 = cpu_now()
        t = time.monotonic()
        busy = 0.0  # seconds spent reading the history back, between changes
        for k in range(a.changes):
            time.sleep(a.gap)
            c = one_change(store, acks, model, synth, rnd, k, a.change_timeout)
            b = time.monotonic()
            end = store.revision()
            c.update(written(store, changes[-1]["end"] + 1 if changes else c["rev"], end), end=end)
            if c["keys"] < c["affected"]:
                raise Failed(f"change {k}: the store's history shows {c['keys']} keys written under {COUNTED}, "
                             f"fewer than the {c['affected']} hosts whose agents saw it")
            changes.append(c)
            busy += time.monotonic() - b
            if ctl.poll() is not None:
                raise Failed(f"the controller exited ({ctl.returncode}) after change {k}: {ctl_log.read_text()[-2000:]}")
        changes_s = time.monotonic() - t - busy - a.gap * a.changes
        cpu = {k: v - cpu0[k] for k, v in cpu_now().items()}
        ctl_rss = rss_mb(ctl.pid)
        agents_rss = round(sum(rss_mb(p.pid) for p in agents), 1)
        ms = [c["ms"] for c in changes]
        log(f"{kind}: {a.changes} changes in {changes_s:.1f} s, p50 {summary(ms)['p50']} ms, p99 {summary(ms)['p99']} ms")
        per = [c["bytes"] for c in changes]
        return {
            "store": kind, "hosts": a.hosts, "vns": a.vns, "endpoints": a.endpoints, "changes": a.changes,
            "agent_procs": a.agent_procs, "gap_s": a.gap,
            "load_s": round(load_s, 2),
            "full_recompute_s": round(recompute_s, 3),
            "full_recompute_by": "Observed covers the last report's revision (controller start, election included)",
            "leader_s": round(leader_s, 3), "first_pass_s": round(recompute_s - leader_s, 3),
            "hosts_with_tables": with_tables,
            "agents_ready_s": round(ready_s, 2),
            "one_endpoint_p50_ms": summary(ms)["p50"], "one_endpoint_p99_ms": summary(ms)["p99"],
            "one_endpoint_ms": summary(ms),
            "add_ms": summary([c["ms"] for c in changes if c["kind"] == "add"]),
            "delete_ms": summary([c["ms"] for c in changes if c["kind"] == "delete"]),
            "stages_ms": {  # where a change's time goes: see the module's docstring
                "first_agent_woke": summary([c["first_woke_ms"] for c in changes]),
                "last_agent_woke": summary([c["last_woke_ms"] for c in changes]),
                "slowest_decode": summary([c["decode_ms"] for c in changes]),
            },
            "affected_hosts": summary([c["affected"] for c in changes]),
            "bytes_written_per_change": round(sum(per) / len(per)),
            "bytes_written_per_affected_host": round(sum(per) / max(1, sum(c["affected"] for c in changes))),
            "keys_written_per_change": round(sum(c["keys"] for c in changes) / len(changes), 2),
            "controller_rss_mb": ctl_rss, "agents_rss_mb": agents_rss,
            "cpu_ms_per_change": {k: round(v * 1000 / a.changes, 2) for k, v in cpu.items()},
            "changes_s": round(changes_s, 1),
            "per_change": [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in c.items()} for c in changes],
        }
    finally:
        for p in agents:
            stop(p, 5)
        if ctl is not None:
            stop(ctl, 10)
        if acks is not None:
            acks.close()
        if store is not None:
            store.close()
        if etcd is not None:
            etcd.stop()


def _terminated(*_: object) -> None:
    raise Failed("terminated (SIGTERM)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scale")
    p.add_argument("--hosts", type=int, default=100)
    p.add_argument("--vns", type=int, default=100)
    p.add_argument("--endpoints", type=int, default=1000)
    p.add_argument("--changes", type=int, default=200)
    p.add_argument("--stores", default="sqlite,etcd")
    p.add_argument("--agent-procs", type=int, default=16,
                   help="processes the simulated agents are dealt into (a real agent has a process, and a machine, "
                        "of its own: the fewer processes, the more the agents of one change queue for one GIL)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--gap", type=float, default=0.2, metavar="S",
                   help="quiet time before each change, so that the controller's pacer (tenet/pace.py: a gap after "
                        "each pass, up to its CPU time) has banked its credit: single changes, not churn")
    p.add_argument("--recompute-timeout", type=float, default=600.0, metavar="S")
    p.add_argument("--ready-timeout", type=float, default=300.0, metavar="S")
    p.add_argument("--change-timeout", type=float, default=60.0, metavar="S")
    a = p.parse_args(argv)
    stores = [s.strip() for s in a.stores.split(",") if s.strip()]
    if min(a.hosts, a.vns, a.endpoints, a.changes, a.agent_procs) < 1 or not stores:
        p.error("--hosts, --vns, --endpoints, --changes and --agent-procs must be >= 1, --stores not empty")
    if set(stores) - {"sqlite", "etcd"}:
        p.error(f"--stores: unknown {sorted(set(stores) - {'sqlite', 'etcd'})} (sqlite, etcd)")
    signal.signal(signal.SIGTERM, _terminated)  # `timeout` sends it: stop what we started on the way out
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="tenet-scale-"))
    results = []
    try:
        for kind in stores:
            results.append(run_store(kind, a, work))
    except BaseException:
        log(f"failed: the store and logs stay in {work}")
        raise
    shutil.rmtree(work)
    out = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/scale.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "code": subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"], capture_output=True, text=True).stdout.strip(),
        "cpus": os.cpu_count(),
        "seconds": round(time.monotonic() - started, 1),
        "results": results,
    }
    dest = HERE / "results"
    dest.mkdir(exist_ok=True)
    (dest / f"scale-{out['date'][:19].replace(':', '')}.json").write_text(json.dumps(out, indent=2))
    print(json.dumps({**out, "results": [{k: v for k, v in r.items() if k != "per_change"} for r in results]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
