"""Controller failover: from a leader's death to the first tables its successor publishes.

    .venv/bin/python bench/failover.py [--rounds 20] [--store URL]

Two controller replicas (real processes, `python -m tenet.controller.main`) serve the intent of
examples/datacenter.yaml from a store — by default a fresh SQLite file; `--store etcd://...`
names an empty etcd instead — while endpoints churn on one host every 20 ms (lab/churn.py),
so that every pass has something to publish. Each round kills the leader, by turns with
SIGKILL (it dies without a word: its lease must lapse) and SIGTERM (it revokes its lease on
the way out: the baseline, everything but the lease's wait), then restarts it as a follower.
Measured from the signal, by watching the store: the leader key gone (vacancy), the successor
holding it (elected), and the successor's Observed record covering the first churn write
after the signal (published: a whole pass that read a change made after the death, and wrote
its tables). p50/p99 per kind; the lease TTL is the floor a SIGKILL cannot beat. Writes JSON
to bench/results/ (on failure, the store and the replicas' logs stay in a temporary directory). Run it alone (flock /tmp/tenet-lab.lock): the two cores are its clock.
"""
from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from tenet.controller.leadership import KEEPALIVE, TTL
from tenet.lab.churn import endpoint_churn
from tenet.model.load import load_file
from tenet.store import keys
from tenet.store.base import follow
from tenet.store.open import open_store
from tenet.store.intent import write_intent
from tenet.store.records import HostTables, Leader, Observed

HERE = Path(__file__).parent
INTENT = HERE.parent / "examples" / "datacenter.yaml"
REPLICAS = ("c1", "c2")


def pct(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


class Replicas:
    """The controller processes, started and signalled by the PIDs we hold, logs in `logs`."""

    def __init__(self, url: str, logs: Path) -> None:
        self.url, self.logs = url, logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        with open(self.logs / f"{name}.log", "ab") as out:
            self.procs[name] = subprocess.Popen([sys.executable, "-m", "tenet.controller.main", "--store", self.url, "--name", name],
                                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text()

    def signal(self, name: str, sig: int) -> None:
        self.procs[name].send_signal(sig)

    def reap(self, name: str) -> None:
        self.procs[name].wait(10)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


def until(what: str, pred, seconds: float = 20.0):
    deadline = time.monotonic() + seconds
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def leader(store) -> str | None:
    kv = store.get(keys.controller_leader())
    return Leader.from_json(kv.value).name if kv else None


def failover(store, replicas: Replicas, churn, host: str, sig: int) -> dict:
    """One round: signal the leader, time vacancy, election and the successor's first publish."""
    old = leader(store)
    new = next(n for n in REPLICAS if n != old)
    generation = HostTables.from_json(store.get(keys.tables(host)).value).generation
    rev = store.revision() + 1
    t0 = time.monotonic()
    replicas.signal(old, sig)
    after = store.revision()  # any write from here on came after the signal
    times: dict[str, float] = {}
    target = 0
    while "published" not in times:
        if time.monotonic() - t0 > 30:
            raise RuntimeError(f"no publication by {new} within 30 s: {times}")
        if not target and churn.last > after:
            target = churn.last  # the first change the successor must publish
        rev, events = follow(store, keys.controller_prefix(), rev, timeout=0.05)
        now = time.monotonic() - t0
        for e in events or []:
            if e.key == keys.controller_leader():
                if e.kind == "delete":
                    times.setdefault("vacancy", now)
                elif Leader.from_json(e.value).name == new:
                    times.setdefault("vacancy", now)  # (a watch may coalesce the delete and the put)
                    times.setdefault("elected", now)
            elif e.key == keys.controller_observed() and e.kind == "put" and target:
                rec = Observed.from_json(e.value)
                through = e.revision if e.revision == rec.revision + 1 else rec.revision
                if rec.leader == new and through >= target:
                    times["published"] = now
    replicas.reap(old)
    published = HostTables.from_json(store.get(keys.tables(host)).value).generation
    if published <= generation:
        raise RuntimeError(f"{new} covered revision {target} without publishing {host}'s churn")
    return {"signal": signal.Signals(sig).name, "old": old, "new": new, **{k: round(v, 4) for k, v in times.items()}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20, help="failovers of each kind (SIGKILL, SIGTERM)")
    ap.add_argument("--store", default="", help="an empty store's URL (default: a fresh SQLite file)")
    a = ap.parse_args()
    if a.rounds < 1:
        ap.error("--rounds must be >= 1")
    work = Path(tempfile.mkdtemp(prefix="tenet-failover-"))
    url = a.store or f"sqlite:///{work / 'store.db'}"
    store = open_store(url)
    if store.range(keys.ROOT):
        store.close()
        shutil.rmtree(work)
        ap.error(f"{url} is not empty: the bench writes its own intent and kills controllers on it")
    intent = load_file(INTENT)
    write_intent(store, intent)
    host = next(h.name for h in intent.fabric.hosts if not h.switch)
    vn = next(v for v in intent.vns if v.forwarding != "ip")
    replicas = Replicas(url, work)
    rounds: list[dict] = []
    try:
        for n in REPLICAS:
            replicas.start(n)
        until("a leader", lambda: leader(store))
        with endpoint_churn(url, host, vn.name, vn.vnid, every=0.02) as churn:
            for i in range(2 * a.rounds):
                until("both replicas up, one following",
                      lambda: all(f"{n}: following" in replicas.log(n) or f"{n}: leading" in replicas.log(n) for n in REPLICAS))
                time.sleep(random.uniform(0.5, 0.5 + KEEPALIVE))  # the kill lands anywhere between two renewals
                r = failover(store, replicas, churn, host, signal.SIGKILL if i % 2 == 0 else signal.SIGTERM)
                rounds.append(r)
                print(json.dumps(r), flush=True)
                (work / f"{r['old']}.log").rename(work / f"{r['old']}-{i}.log")
                replicas.start(r["old"])  # back as a follower for the next round
    except BaseException:
        print(f"failed; the store and the replicas' logs are in {work}", file=sys.stderr)
        raise
    finally:
        replicas.stop()
        store.close()
    shutil.rmtree(work)
    summary = {}
    for kind in ("SIGKILL", "SIGTERM"):
        rs = [r for r in rounds if r["signal"] == kind]
        summary[kind] = {m: {"p50": round(pct([r[m] for r in rs], 50), 3), "p99": round(pct([r[m] for r in rs], 99), 3),
                             "max": round(max(r[m] for r in rs), 3)} for m in ("vacancy", "elected", "published")}
    kill, term = summary["SIGKILL"]["published"]["p50"], summary["SIGTERM"]["published"]["p50"]
    out = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/failover.py " + " ".join(sys.argv[1:]),
        "store": url.split(":", 1)[0],
        "lease_ttl_s": TTL, "keepalive_s": KEEPALIVE,
        "rounds_per_kind": a.rounds,
        "seconds": summary,
        "sigkill_minus_sigterm_p50_s": round(kill - term, 3),
        "sigkill_p50_over_ttl": round(kill / TTL, 3),
        "rounds": rounds,
    }
    dest = HERE / "results"
    dest.mkdir(exist_ok=True)
    (dest / f"failover-{out['date'][:19].replace(':', '')}.json").write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "rounds"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
