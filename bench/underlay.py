"""Underlay failover: how long traffic between the farthest racks of a leaf-spine fabric stops
when a spine dies silently (lab/faults.py), against OSPF's dead interval, in one run.

    .venv/bin/python bench/underlay.py [--failures 10]

tests/lab/leafspine.yaml (four leaves, two spines, ECMP). Each round fails one spine (they
alternate) under a 50-echo-per-second ping r1 (rack 1) -> r4 (rack 4) inside VN red, brings
it back, and waits until the lab sees both equal paths again. The baseline is the dead
interval the routers run with (1 s): an outage near it means the overlay adds nothing to the
underlay's own detection; tables are checked unchanged after every round. ECMP hashes the
flow (both directions) onto one spine, so the other spine's failures cost nothing: figures
are per spine. Writes JSON to bench/results/.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from datetime import datetime, timezone
from pathlib import Path

from tenet.lab.demo import read_tables
from tenet.lab.faults import ping_through, router_down
from tenet.lab.lab import Lab

HERE = Path(__file__).parent
DEAD_INTERVAL = 1.0  # s: lab/frr.py, "dead-interval minimal hello-multiplier 4"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--failures", type=int, default=10)
    args = ap.parse_args()
    outages: dict[str, list[float]] = {"spine1": [], "spine2": []}
    changed = 0
    with Lab.load(HERE.parent / "tests" / "lab" / "leafspine.yaml", progress=print) as lab:
        tables = {h: t.generation for h, t in read_tables(lab.store_url, lab.intent).items()}
        for i in range(args.failures):
            spine = ("spine1", "spine2")[i % 2]
            lab.wait_routed(30)
            run = ping_through(lab, "r1", "10.70.0.4", lambda: router_down(lab, spine))
            now = {h: t.generation for h, t in read_tables(lab.store_url, lab.intent).items()}
            changed += now != tables
            outages[spine].append(run.outage)
            print(f"{spine}: {run.sent - run.received}/{run.sent} lost, {run.outage:.2f} s")
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "failures": args.failures,
        "dead_interval_s": DEAD_INTERVAL,
        "outage_s": {s: {"min": min(o), "p50": statistics.median(o), "max": max(o),
                         "p50_over_dead_interval": statistics.median(o) / DEAD_INTERVAL}
                     for s, o in outages.items() if o},
        "rounds_with_table_changes": changed,
        "outages": outages,
    }
    out = HERE / "results" / "underlay.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "outages"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
