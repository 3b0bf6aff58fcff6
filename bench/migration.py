"""Live migration's gap beside a naive migration, in the same run (issue 16).

Each kind moves one VM back and forth between two hosts, N times, while two peers probe it
every millisecond (src/tenet/lab/gap.py: a UDP echo, so a lost probe is a lost round trip)
— p2 on the first physical network and p4 behind the router — and an iperf3 TCP stream from
p2 runs across each batch of migrations:

  within   m  h1 <-> h3   one physical network (peers translate, then encapsulate to both)
  across   m  h3 <-> h5   across the router (each peer's addressing flips)
  8021x    v  host6 <-> host7   behind two access switches on two networks (logoff, re-auth)
  nvo3     t  h2 <-> h4   a TES: its old NVE ends the session, it rediscovers through the new

and each kind twice, alternating batch by batch: `live` (hypervisor/migration.py: pre-staged,
cut over, announced, committed) and `naive` (the intent changes, then the ports follow: no
pre-staging, no make-before-break). A migration's gap, for one peer, is the longest run of
unanswered probes overlapping [migration start, its end + 0.5 s]. The first batch of each
kind and mode is a warm-up (a host's first VXLAN group join across the router, a switch's
first rate stage for the MAC) and not counted.

  python bench/migration.py [--count 50] [--batch 10] [--kinds within,across,8021x,nvo3]

Writes bench/results/migration.json and prints p50/p99/max per kind, mode and peer, and TCP
sessions that survived. FRR EVPN's MAC mobility, the peer, is bench/evpn_peer.py.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from iperf import survived
from stats import summary
from tenet.lab.gap import Echo, Prober
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).parent / "migration.yaml"
RESULTS = Path(__file__).parent / "results" / "migration.json"
KINDS = {"within": ("m", "h1", "h3"), "across": ("m", "h3", "h5"), "8021x": ("v", "host6", "host7"),
         "nvo3": ("t", "h2", "h4")}
PEERS = ("p2", "p4")
SPACING = 0.6  # seconds between one migration's end and the next one's start
AFTER = 0.5  # a migration's window extends this long past its end (a late loss is still its own)


@dataclass
class Series:
    gaps: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PEERS})
    phases: list[tuple[float, float, float]] = field(default_factory=list)  # pre-stage, cut-over, commit (s)
    tcp: list[bool] = field(default_factory=list)


def ip_of(lab: Lab, vm: str) -> str:
    return next(str(n.ip.ip) for v in lab.intent.vms if v.name == vm for n in v.nics if n.ip)


def batch(lab: Lab, vm: str, a: str, b: str, count: int, live: bool, out: Series | None) -> None:
    """`count` migrations of `vm` between `a` and `b` (it starts wherever it is), probed."""
    ip = ip_of(lab, vm)
    seconds = count * 1.6 + 2.0
    server = lab.popen(vm, "iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    client = lab.popen("p2", "iperf3", "-c", ip, "-t", f"{seconds:.0f}", "-b", "20M", "-J",
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    probers = [Prober(lab, p, ip, seconds) for p in PEERS]
    windows = []
    try:
        time.sleep(0.5)
        for _ in range(count):
            here = next(v.host for v in lab.hypervisor.intent().vms if v.name == vm)
            begin = time.monotonic()
            r = lab.hypervisor.migrate(vm, b if here == a else a, live=live)
            windows.append((begin, time.monotonic() + AFTER))
            if out is not None:
                out.phases.append((r.prestage_s, r.cutover_s, r.commit_s))
            time.sleep(SPACING)
        gaps = {p.node: p.gaps() for p in probers}
        text, _ = client.communicate(timeout=seconds + 30)
    finally:
        for p in (server, client, *(x.proc for x in probers)):
            if p.poll() is None:
                p.kill()
                p.wait()
    if out is None:
        return
    for peer, g in gaps.items():
        out.gaps[peer] += [g.within(s, e) * 1000 for s, e in windows]
    out.tcp.append(survived(text, client.returncode))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=50, help="migrations per kind and mode (counted ones)")
    p.add_argument("--batch", type=int, default=10, help="migrations per probed batch (one TCP session each)")
    p.add_argument("--kinds", default=",".join(KINDS))
    a = p.parse_args()
    kinds = [k for k in a.kinds.split(",") if k]
    results: dict[str, dict[str, Series]] = {k: {"live": Series(), "naive": Series()} for k in kinds}
    with Lab.load(TOPOLOGY) as lab:
        echoes = {vm: Echo(lab, vm) for vm in {KINDS[k][0] for k in kinds}}
        try:
            for k in kinds:
                vm, x, y = KINDS[k]
                for live in (True, False):  # warm-up batches
                    batch(lab, vm, x, y, 2, live, None)
                done = 0
                while done < a.count:
                    n = min(a.batch, a.count - done)
                    for live in (True, False):
                        batch(lab, vm, x, y, n, live, results[k]["live" if live else "naive"])
                    done += n
                    print(f"{k}: {done}/{a.count}", file=sys.stderr, flush=True)
        finally:
            for e in echoes.values():
                e.stop()
    report = {k: {mode: {"gap_ms": {peer: summary(s.gaps[peer]) for peer in PEERS},
                         "migrations": len(s.gaps[PEERS[0]]),
                         "phases_ms": {name: summary([ph[i] * 1000 for ph in s.phases])
                                       for i, name in enumerate(("prestage", "cutover", "commit"))},
                         "tcp_survived": f"{sum(s.tcp)}/{len(s.tcp)}",
                         "raw_gap_ms": {peer: [round(g, 1) for g in s.gaps[peer]] for peer in PEERS}}
                  for mode, s in modes.items()}
              for k, modes in results.items()}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"{'kind':8} {'mode':6} {'peer':4} {'n':>4} {'gap p50':>8} {'p99':>7} {'max':>7}  TCP")
    for k, modes in report.items():
        for mode, r in modes.items():
            for peer in PEERS:
                g = r["gap_ms"][peer]
                print(f"{k:8} {mode:6} {peer:4} {r['migrations']:>4} {g['p50']:>8} {g['p99']:>7} {g['max']:>7}  "
                      f"{r['tcp_survived']}")
    print(f"(ms; {RESULTS})")


if __name__ == "__main__":
    main()
