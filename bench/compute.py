"""The pure compute alone at scale: the full recompute and one-endpoint incremental updates.

    .venv/bin/python bench/compute.py [--sizes 100x100x1000,1000x1000x10000,1000x1000x100000] [--updates 300]

Sizes are hosts x VNs x endpoints of bench/synthetic.py's seeded fabric (replicated VNs over
10 physical networks). Per size, in a child process of its own (so that its peak RSS is its
own): `compute_tables` timed `--repeat` times, and the garbage collector's pass over what
it made (its full collections paused during the compute, see addressing.full_collections_paused) timed apart; a `Tables` engine loaded with the same inputs;
then `--updates` random single-endpoint changes (add, remove, move to another host, in turn),
each timed around `Tables.update` alone. The incremental result is checked against a full
recompute at the end. The baseline in the same run is the full recompute itself:
`speedup` = full recompute / incremental p50. Writes JSON to bench/results/.
"""
from __future__ import annotations

import argparse
import gc
import json
import random
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from bench.synthetic import Synthetic  # noqa: E402
from tenet.compute.addressing import compute_tables, members_by_vn  # noqa: E402
from tenet.compute.endpoints import Endpoint  # noqa: E402
from tenet.compute.extmac import allocate, index_of, mac_of  # noqa: E402
from tenet.compute.incremental import Tables  # noqa: E402


def percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def one(size: str, repeat: int, updates: int, seed: int) -> dict:
    hosts, vns, endpoints = map(int, size.split("x"))
    syn = Synthetic(hosts, vns, endpoints)
    intent = syn.intent()
    eps = list(syn.endpoints_of(intent))
    macs = allocate([e.key for e in eps], {})
    held: frozenset[tuple[str, str]] = frozenset()
    full, collect = [], []
    tables = None
    for _ in range(repeat):
        del tables  # as a controller would: the previous tables are gone before the next pass
        t = time.perf_counter()
        tables = compute_tables(intent, tuple(eps), macs, held)
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        gc.collect()  # the collector's one scan of what the compute made (paused during it)
        collect.append(time.perf_counter() - t)
    rows = sum(len(vt.entries) for ht in tables.values() for vt in ht.vns)
    reverse = sum(len(vt.reverse) for ht in tables.values() for vt in ht.vns)
    instances = sum(len(ht.vns) for ht in tables.values())
    del tables
    engine, members = Tables(), members_by_vn(eps)
    t = time.perf_counter()
    engine.update(intent, members, macs, held)
    load = time.perf_counter() - t
    rnd = random.Random(seed)
    cursor = max(index_of(m) or 0 for m in macs.values()) + 1
    times: dict[str, list[float]] = {"add": [], "remove": [], "move": []}
    touched = []
    for i in range(updates):
        kind = ("add", "remove", "move")[i % 3]
        if kind == "add":
            n = endpoints + i
            vn, host = syn.vn(rnd.randrange(vns)), syn.host(rnd.randrange(hosts))
            ep = Endpoint(vn=vn, vm=f"tes-b{n:x}", nic=0, mac=f"02:5d:{n >> 24 & 255:02x}:{n >> 16 & 255:02x}:"
                          f"{n >> 8 & 255:02x}:{n & 255:02x}", ip="", host=host, port=f"tb{n:x}")
            macs[ep.key], cursor = mac_of(cursor), cursor + 1  # the controller allocates before computing
            eps.append(ep)
            old, new = None, ep
        else:
            k = rnd.randrange(len(eps))
            old = eps[k]
            new = replace(old, host=syn.host(rnd.randrange(hosts))) if kind == "move" else None
            if new is None:
                eps[k] = eps[-1]
                eps.pop()
            else:
                eps[k] = new
        vn = (new or old).vn
        members = {**members, vn: tuple(e for e in members.get(vn, ()) if e is not old) + ((new,) if new else ())}
        t = time.perf_counter()
        changed = engine.update(intent, members, macs, held)
        times[kind].append(time.perf_counter() - t)
        touched.append(len(changed.instances))
    equal = engine.tables == compute_tables(intent, tuple(eps), macs, held)
    every = [x for xs in times.values() for x in xs]
    p50 = percentile(every, 50)
    return {
        "size": size, "hosts": hosts, "vns": vns, "endpoints": endpoints,
        "full_recompute_s": round(statistics.median(full), 3), "full_recompute_runs_s": [round(x, 3) for x in full],
        "collect_after_s": round(statistics.median(collect), 3),
        "engine_load_s": round(load, 3),
        "incremental_one_endpoint_p50_ms": round(p50 * 1e3, 3),
        "incremental_one_endpoint_p99_ms": round(percentile(every, 99) * 1e3, 3),
        "incremental_p50_ms_by_kind": {k: round(percentile(v, 50) * 1e3, 3) for k, v in times.items() if v},
        "updates": len(every), "instances_changed_p50": percentile(touched, 50),
        "speedup": round(statistics.median(full) / p50, 1),
        "instances": instances, "entries": rows, "reverse_entries": reverse,
        "incremental_equals_full": equal,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100x100x1000,1000x1000x10000,1000x1000x100000")
    ap.add_argument("--repeat", type=int, default=3, help="full recomputes timed per size (median reported)")
    ap.add_argument("--updates", type=int, default=300, help="single-endpoint updates timed per size (>= 200)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # a child: one size, its JSON on stdout
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.repeat, args.updates, args.seed)))
        return
    runs = []
    for size in args.sizes.split(","):
        child = subprocess.run([sys.executable, __file__, "--one", size, "--repeat", str(args.repeat),
                                "--updates", str(args.updates), "--seed", str(args.seed)],
                               capture_output=True, text=True, check=True)
        runs.append(json.loads(child.stdout))
        print(json.dumps(runs[-1]), flush=True)
    out = {"bench": "compute", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": runs}
    dest = HERE / "results" / f"compute-{datetime.now(timezone.utc):%Y-%m-%dT%H%M%S}.json"
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=1))
    print(dest)


if __name__ == "__main__":
    main()
