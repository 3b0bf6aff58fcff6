"""SQLite watch wake-ups: how many watchers one commit wakes, and how soon the right one returns.

    .venv/bin/python bench/store_wakeups.py [--procs 4] [--threads 50] [--commits 200] [--baseline SRC]

PROCS watcher processes of THREADS threads each (one SqliteStore per process, as an agent holds
one) follow their own host's tables, /tenet/hosts/h<N>/tables, on one fresh SQLite file: the
scale target's agents, as threads. A writer process then puts one host's tables COMMITS times,
one every PACE, each value carrying the monotonic time just before its put (CLOCK_MONOTONIC is
one clock for every process on the machine). Measured:

* wakes per commit: waits of all watchers ended by a notification (not by a timeout) during the
  commits, divided by the commits (the ideal is 1: the one host's watcher);
* looks per commit: the watchers' reads of the store (every watch iteration reaps and reads:
  wakes, re-checks and fallback polls), less what the same watchers read while idle for as
  long, divided by the commits;
* the write -> watcher-returns latency of the host written to (p50/p99), and the writer's put.

`--baseline SRC` runs the same measurement first with the tenet sources in SRC (e.g. the main
branch's src/, which wakes every watcher on every commit) and reports after/before ratios.
Writes JSON to bench/results/. Run it alone (flock /tmp/tenet-lab.lock): two cores are its clock.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).parent
TARGET = 7  # the host written to


def _send(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# -- a watcher process: THREADS agents' watches on one store ---------------------------------
def watcher(db: str, first: int, count: int) -> None:
    from tenet.store import keys
    from tenet.store.base import follow
    from tenet.store.sqlite import SqliteStore

    store = SqliteStore(db)
    counts = {"wakes": 0, "looks": 0}
    lock = threading.Lock()
    reap = store._reap

    def looked() -> None:  # once per watch iteration (watchers call nothing else that reaps)
        with lock:
            counts["looks"] += 1
        reap()

    store._reap = looked  # type: ignore[method-assign]
    if hasattr(store, "bells"):  # this branch: waits ended by a ring are counted by the bells
        def wakes() -> int:
            return store.bells.wakeups
    else:  # before: one inotify descriptor on the write-ahead log for the whole process
        changes, wait = store.changes, store.changes.wait

        def counted(timeout: float) -> bool:
            woke = wait(timeout)
            if woke:
                with lock:
                    counts["wakes"] += 1
            return woke

        changes.wait = counted  # type: ignore[method-assign]

        def wakes() -> int:
            return counts["wakes"]

    stop = threading.Event()
    latencies: list[float] = []

    def follow_host(n: int) -> None:
        rev = store.revision() + 1
        while not stop.is_set():
            rev, events = follow(store, keys.tables(f"h{n}"), rev, timeout=1.0)
            now = time.monotonic()
            for e in events or ():
                if e.value:
                    latencies.append((now - json.loads(e.value)["t0"]) * 1000)

    threads = [threading.Thread(target=follow_host, args=(n,), daemon=True) for n in range(first, first + count)]
    for t in threads:
        t.start()
    _send({"ready": True})
    for line in sys.stdin:
        if line.strip() == "count":
            with lock:
                _send({"wakes": wakes(), "looks": counts["looks"], "latencies_ms": list(latencies)})
        elif line.strip() == "stop":
            break
    stop.set()
    for t in threads:
        t.join(5)
    store.close()


# -- the writer process -------------------------------------------------------------------------
def writer(db: str, commits: int, pace: float) -> None:
    from tenet.store import keys
    from tenet.store.sqlite import SqliteStore

    store = SqliteStore(db)
    took = []
    for i in range(commits):
        t0 = time.monotonic()
        store.put(keys.tables(f"h{TARGET}"), json.dumps({"t0": t0, "i": i}).encode())
        took.append((time.monotonic() - t0) * 1000)
        time.sleep(max(0.0, pace - (time.monotonic() - t0)))
    store.close()
    _send({"put_ms": took})


# -- the orchestrator ---------------------------------------------------------------------------
def _spawn(src: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": src}
    return subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)


def _ask(procs: list[subprocess.Popen], line: str) -> list[dict]:
    for p in procs:
        p.stdin.write(line + "\n")
        p.stdin.flush()
    return [json.loads(p.stdout.readline()) for p in procs]


def measure(src: str, a: argparse.Namespace) -> dict:
    from stats import summary

    with tempfile.TemporaryDirectory(prefix="tenet-wakeups-") as tmp:
        db = str(Path(tmp) / "store.db")
        init = _spawn(src, "--role", "writer", "--db", db, "--commits", "0")  # creates the file and schema
        init.communicate(timeout=60)
        procs = [_spawn(src, "--role", "watcher", "--db", db, "--first", str(i * a.threads), "--count", str(a.threads))
                 for i in range(a.procs)]
        try:
            for p in procs:
                assert json.loads(p.stdout.readline())["ready"]
            time.sleep(a.settle)  # every thread has made its first look and waits
            c0, t0 = _ask(procs, "count"), time.monotonic()
            time.sleep(a.commits * a.pace)  # idle, as long as the commits will take
            c1, t1 = _ask(procs, "count"), time.monotonic()
            w = _spawn(src, "--role", "writer", "--db", db, "--commits", str(a.commits), "--pace", str(a.pace))
            put_ms = json.loads(w.communicate(timeout=600)[0])["put_ms"]
            time.sleep(a.settle)  # the last commit's wake-ups are over
            c2, t2 = _ask(procs, "count"), time.monotonic()
            _ask_stop(procs)
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    total = {k: [sum(c[k] for c in cs) for cs in (c0, c1, c2)] for k in ("wakes", "looks")}
    idle_rate = (total["looks"][1] - total["looks"][0]) / (t1 - t0)
    lat = [x for c in c2 for x in c["latencies_ms"]]
    return {
        "src": src,
        "wakes_per_commit": round((total["wakes"][2] - total["wakes"][1]) / a.commits, 2),
        "looks_per_commit": round((total["looks"][2] - total["looks"][1] - idle_rate * (t2 - t1)) / a.commits, 2),
        "idle_looks_per_s": round(idle_rate, 1),
        "events_seen": len(lat),
        "write_to_watcher_ms": summary(lat, 2),
        "put_ms": summary(put_ms, 2),
    }


def _ask_stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.stdin.write("stop\n")
        p.stdin.close()
    for p in procs:
        p.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--role", choices=["orchestrate", "watcher", "writer"], default="orchestrate")
    ap.add_argument("--db")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--threads", type=int, default=50)
    ap.add_argument("--commits", type=int, default=200)
    ap.add_argument("--pace", type=float, default=0.02, help="s between commits")
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--baseline", help="tenet sources to measure first (e.g. /work/main/src)")
    a = ap.parse_args()
    if a.role == "watcher":
        watcher(a.db, a.first, a.count)
        return 0
    if a.role == "writer":
        writer(a.db, a.commits, a.pace)
        return 0
    if TARGET >= a.procs * a.threads:
        ap.error(f"host h{TARGET} is written to: watch at least {TARGET + 1} hosts")
    sys.path.insert(0, str(HERE))
    import tenet

    here = str(Path(tenet.__file__).resolve().parents[1])
    runs = {}
    if a.baseline:
        runs["before"] = measure(a.baseline, a)
    runs["after"] = measure(here, a)
    out = {"bench": "store_wakeups", "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "watchers": a.procs * a.threads, "procs": a.procs, "threads_per_proc": a.threads,
           "commits": a.commits, "pace_s": a.pace, **runs}
    if a.baseline:
        b, f = runs["before"], runs["after"]
        out["ratios_after_to_before"] = {
            "wakes_per_commit": round(f["wakes_per_commit"] / b["wakes_per_commit"], 4) if b["wakes_per_commit"] else None,
            "looks_per_commit": round(f["looks_per_commit"] / b["looks_per_commit"], 4) if b["looks_per_commit"] else None,
            "write_to_watcher_p50": round(f["write_to_watcher_ms"]["p50"] / b["write_to_watcher_ms"]["p50"], 3),
            "write_to_watcher_p99": round(f["write_to_watcher_ms"]["p99"] / b["write_to_watcher_ms"]["p99"], 3),
        }
    dest = HERE / "results"
    dest.mkdir(exist_ok=True)
    (dest / f"store_wakeups-{out['date'][:19].replace(':', '')}.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
