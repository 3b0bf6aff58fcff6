"""Controller failover: from a leader's death to the first tables its successor publishes.

    .venv/bin/python bench/failover.py [--rounds 20] [--store URL]

Two controller replicas (real processes, `python -m tenet.controller.main`) serve the intent of
examples/datacenter.yaml from a store — by default a fresh SQLite file; `--store etcd://...`
names an empty etcd instead — while endpoints churn on one host every 20 ms (lab/churn.py),
so that every pass has something to publish. Each round kills the leader, by turns with
SIGKILL (it dies without a word: its lease must lapse) and SIGTERM (it revokes its lease on
the way out: the baseline, everything but the lease's wait), then restarts it as a follower.
Measured from the signal, by looking at the store every 10 ms (gap()): the leader key gone (vacancy), the successor
holding it (elected), and the successor's Observed record covering the first churn write
after the signal (published: a whole pass that read a change made after the death, and wrote
its tables). p50/p99 per kind; the lease TTL is the floor a SIGKILL cannot beat. Writes JSON
to bench/results/ (on failure, the store and the replicas' logs stay in a temporary
directory). Run it alone (flock /tmp/tenet-lab.lock): the two cores are its clock.
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
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from stats import pct
from tenet.controller.leadership import KEEPALIVE, TTL
from tenet.controller.observed import through
from tenet.lab.churn import endpoint_churn
from tenet.model.load import load_file
from tenet.store import keys, published
from tenet.store.open import open_store
from tenet.store.intent import write_intent
from tenet.store.records import Leader, Observed

HERE = Path(__file__).parent
INTENT = HERE.parent / "examples" / "datacenter.yaml"
REPLICAS = ("c1", "c2")
POLL = 0.01  # s between looks at the controller's keys


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


def gap(store, churn, host: str, old: str, new: str, kill: Callable[[], None], limit: float = 30.0) -> dict[str, float]:
    """One failover, shared with bench/control_plane.py: `kill` the leader `old`, then time from
    that moment, looking at the store every POLL: the leader key no longer `old`'s (vacancy),
    `new` holding it (elected), and `new`'s Observed record covering the first write of
    `churn` (on `host`) made after the kill (published), `host`'s tables written anew.

    Looked at, not watched: on etcd a watch call is one stream, and an event that lands while
    the next call's stream is being made is sent only by etcd's history sync (every 100 ms),
    which would add up to 100 ms to etcd's figures alone. A look costs one read; the error is
    the poll period plus a read, on both stores alike."""
    generation = published.read(store, host).generation
    t0 = time.monotonic()
    kill()
    after = store.revision()  # any write from here on came after the kill
    times: dict[str, float] = {}
    target = 0
    while "published" not in times:
        if time.monotonic() - t0 > limit:
            raise RuntimeError(f"no publication by {new} within {limit:.0f} s: {times}")
        if not target and churn.last > after:
            target = churn.last  # the first change the successor must publish
        found = {kv.key: kv for kv in store.range(keys.controller_prefix())}
        now = time.monotonic() - t0
        held = found.get(keys.controller_leader())
        holder = Leader.from_json(held.value).name if held else None
        if holder != old:
            times.setdefault("vacancy", now)  # (a look may miss a vacancy the successor filled at once)
        if holder == new:
            times.setdefault("elected", now)
        observed = found.get(keys.controller_observed())
        if target and observed and Observed.from_json(observed.value).leader == new and through(observed) >= target:
            times["published"] = now
        else:
            time.sleep(POLL)
    now_at = published.read(store, host).generation
    if now_at <= generation:
        raise RuntimeError(f"{new} covered revision {target} without publishing {host}'s churn")
    return {k: round(v, 4) for k, v in times.items()}


def by_signal(rounds: list[dict]) -> dict[str, dict]:
    """Per signal, the p50, p99 and max of each time gap() measured, in seconds."""
    out = {}
    for kind in sorted({r["signal"] for r in rounds}):
        rs = [r for r in rounds if r["signal"] == kind]
        out[kind] = {m: {"p50": round(pct([r[m] for r in rs], 50), 3), "p99": round(pct([r[m] for r in rs], 99), 3),
                         "max": round(max(r[m] for r in rs), 3)} for m in ("vacancy", "elected", "published")}
    return out


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
                sig = signal.SIGKILL if i % 2 == 0 else signal.SIGTERM
                old = leader(store)
                new = next(n for n in REPLICAS if n != old)
                r = {"signal": sig.name, "old": old, "new": new,
                     **gap(store, churn, host, old, new, lambda: replicas.signal(old, sig))}
                replicas.reap(old)
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
    summary = by_signal(rounds)
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
