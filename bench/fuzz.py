"""Fuzz every decoder of untrusted input (issue 18): NVO3 discovery, EAPOL, EAP, ARP, peer
hints, RADIUS replies and dynamic-authorization requests, the rtnetlink link dump, the
topology loader, the agent's config file and the store's records.

    python bench/fuzz.py --inputs 1000000 [--target NAME] [--seed S]

Per target: inputs, seconds, inputs/s, distinct outcomes, crashes (an exception the API does
not document), hangs (an input slower than 1 s) and the slowest input. Deterministic for a
seed. Crashing and hanging inputs are saved in bench/results/fuzz-crashes/ and printed.
Exit status 1 when anything crashed or hung.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from fuzzing.run import Result, run  # noqa: E402
from fuzzing.targets import by_name  # noqa: E402

CRASHES = HERE / "results" / "fuzz-crashes"


def save(result: Result) -> list[Path]:
    """Each finding's input in its own file, named by target and content."""
    CRASHES.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in result.findings:
        p = CRASHES / f"{result.target}-{f.kind}-{hashlib.sha1(f.data).hexdigest()[:12]}.bin"
        p.write_bytes(f.data)
        paths.append(p)
    return paths


def line(r: Result) -> str:
    outcomes = ", ".join(f"{name} {n}" for name, n in r.outcomes)
    return (f"{r.target:<10} {r.inputs:>9} inputs {r.seconds:9.1f} s {r.rate:9.0f}/s  crashes {r.crashes}  hangs {r.hangs}"
            f"  slowest {r.slowest * 1000:.1f} ms  outcomes {len(r.outcomes)} ({r.kinds} kinds): {outcomes}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--inputs", type=int, default=10000)
    ap.add_argument("--target", action="append", help="one target (repeatable); default: all")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", type=Path, help="append each target's result as a JSON line")
    args = ap.parse_args()
    targets = by_name(args.target)
    bad = 0
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %Z')} seed {args.seed}, python {platform.python_version()}, {platform.machine()}",
          flush=True)
    for t in targets:
        r = run(t, args.inputs, args.seed)
        print(line(r), flush=True)
        for f, p in zip(r.findings, save(r)):
            print(f"  {f.kind} #{f.index}: {f.outcome}: {f.message[:300]} ({f.seconds * 1000:.1f} ms) -> {p}")
            print(f"    input: {f.data[:400]!r}")
        if args.json:
            with args.json.open("a") as out:
                d = asdict(r) | {"rate": r.rate, "seed": args.seed}
                d["findings"] = [{k: v for k, v in asdict(f).items() if k != "data"} for f in r.findings]
                out.write(json.dumps(d) + "\n")
        bad += r.crashes + r.hangs
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
