"""FRR's EVPN MAC mobility as the peer of tenet's live migration (issue 16, item 4), measured
the way bench/migration.py measures tenet.

The fabric (bench/evpn_fabric.py) mirrors tests/lab/migrate.yaml on the same kernel VXLAN
dataplane: h1..h3 on pn1, h4 and h5 behind router r on pn2, each host a VTEP (bridge +
VXLAN VNI 7301, nolearning) with FRR zebra + bgpd, iBGP `l2vpn evpn` + `advertise-all-vni` to
one route reflector, BUM by ingress replication (type-3 routes). m starts on h1; p2 (on h2,
pn1) and p4 (on h4, pn2) probe it every millisecond (src/tenet/lab/gap.py). A migration is
what tenet's lab does: m's host-side veth end handed to the destination's namespace and into
its bridge (pyroute2, sockets opened first: lab/vms.py `move_port`), then a RARP and a
gratuitous ARP from m (lab/announce.py's frames), again 50 ms later (QEMU's first announce
interval). The destination's bridge learns m's MAC on the port, its zebra hands it to bgpd,
which advertises a type-2 route with the next MAC mobility sequence number; the source's
bridge lost the entry with the port, so its bgpd withdraws; the peers' zebra moves their
VXLAN FDB entry. Nothing is pre-staged: EVPN has no notion of a migration about to happen.

  within   m  h1 <-> h3   one physical network
  across   m  h3 <-> h5   across the router

Batches of migrations under one probe stream and one iperf3 TCP session from p2 (20 Mbit/s),
as in bench/migration.py: a migration's gap, for one peer, is the longest run of unanswered
probes overlapping [its start, its end + 0.5 s]; a session survived when iperf3 exits 0 and
its last intervals still carried data. The first batch of each kind (2 migrations) is a
warm-up and not counted. FRR runs as it ships (duplicate address detection on; it never
flags m: bench/evpn_fabric.py `bgpd_conf`). Each peer's VTEP is watched too (rtnetlink FDB
events): how long after a migration's start it pointed m's MAC at the new VTEP.

  flock /tmp/tenet-lab.lock timeout 1500 env PYTHONPATH=src .venv/bin/python bench/evpn_peer.py \
      [--count 50] [--batch 10] [--kinds within,across] [--quick] [--debug]

Measured here (FRR 8.4.4, kernel 6.18, 2 cores; 50 migrations per kind, 1 ms probes): gap
p50/p99/max 112/116/116 ms within pn1, 112/115/115 ms across the router, the same from both
peers; the peers' VTEPs moved m's entry 114 ms (p50) after a migration began; 10/10 TCP
sessions (each across 10 migrations) survived. Where the time goes (`--debug`'s logs, one
migration h1 -> h3, ms from the hand-over): h1's zebra sees the port leave at 0 and h3's
learns m from the gratuitous ARP at 17; h1's bgpd sends its withdrawal at 50 and h3's bgpd
its type-2 route (MAC mobility sequence 1) at 67; the reflector sends both on at 101; h2's
zebra replaces the VXLAN FDB entry at 111. Each bgpd holds its route-processing work queue
50 ms before running it (a constant: bgpd/bgp_route.c `bgp_process_queue_init`, spec.hold
= 50), twice on the way (the VTEP that learnt, the reflector), then zebra's ~10 ms:
a floor of ~110 ms whatever the CPU, the same within a network and across the router.

Writes bench/results/evpn_peer.json (or --out) and prints p50/p99/max per kind and peer. Needs
root and Debian's frr (8.4 here). After a crash, `tenet lab down evpn` removes what it recorded.
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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from evpn_fabric import HOSTS, VNI, EvpnFabric, FdbWatch, Vm, vtep  # noqa: E402
from iperf import survived  # noqa: E402
from stats import summary  # noqa: E402
from tenet.lab.gap import Echo, Gaps, Prober  # noqa: E402
from tenet.lab.netns import LabError  # noqa: E402

RESULTS = HERE / "results" / "evpn_peer.json"
M = Vm("m", "h1", "02:73:00:00:00:10", "10.73.0.10")
P2 = Vm("p2", "h2", "02:73:00:00:00:02", "10.73.0.2")
P4 = Vm("p4", "h4", "02:73:00:00:00:04", "10.73.0.4")
KINDS = {"within": ("h1", "h3"), "across": ("h3", "h5")}
PEERS = ("p2", "p4")
SPACING = 0.6  # seconds between one migration's end and the next one's start (bench/migration.py's)
AFTER = 0.5  # a migration's window extends this long past its end
REANNOUNCE = 0.05  # the second announcement, as QEMU's announce-initial
WARMUP = 2


@dataclass
class Series:
    gaps: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PEERS})
    tcp: list[bool] = field(default_factory=list)
    followed: list[bool] = field(default_factory=list)  # after the batch: both peers' FDB at m's VTEP
    sequence: list[int] = field(default_factory=list)  # m's MAC mobility sequence number after each batch
    # ms from a migration's start until the peer's VTEP pointed m's MAC at the new VTEP, and
    # until it dropped the entry to the old one (then it floods to every VTEP: m answers again)
    moved: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PEERS})
    dropped: dict[str, list[float]] = field(default_factory=lambda: {p: [] for p in PEERS})


def within(g: Gaps, start: float, begin: float, end: float) -> float:
    """The longest run of `g` overlapping [begin, end] (the driver's monotonic clock), seconds.
    `start` is when the stream began on that clock (gap.py's own when it reports one)."""
    start = getattr(g, "start", 0.0) or start
    return max((n for at, n in g.runs if start + at <= end and start + at + n >= begin), default=0.0)


@dataclass(frozen=True)
class Move:
    source: str
    destination: str
    begin: float  # the driver's monotonic clock
    end: float


def migrate(f: EvpnFabric, to: str) -> Move:
    source, begin = f.where[M.name], time.monotonic()
    f.move(M.name, to)
    f.announce(M.name)
    time.sleep(REANNOUNCE)
    f.announce(M.name)
    return Move(source, to, begin, time.monotonic())


def first(events: list[tuple[float, str, str]], kind: str, dst: str, begin: float, until: float) -> float | None:
    """ms from `begin` to the first FDB event of `kind` toward VTEP `dst` before `until`."""
    return next(((t - begin) * 1000 for t, k, d in events if k == kind and d == dst and begin <= t < until), None)


def followed(f: EvpnFabric) -> bool:
    """Every peer's bridge sends m's frames to the VTEP m is on now (or to its port, if local)."""
    now = f.where[M.name]
    want = lambda h: f"local:{M.port}" if h == now else vtep(now)  # noqa: E731
    return all(f.where_is(h, M.mac) == want(h) for h in (P2.host, P4.host))


def sequence(f: EvpnFabric) -> int:
    """m's MAC mobility sequence number as p2's VTEP holds it (local or remote)."""
    d = f.vtysh_json(P2.host, f"show evpn mac vni {VNI} mac {M.mac} json")
    d = d.get(M.mac, d)
    return max(int(d.get("localSequence", 0) or 0), int(d.get("remoteSequence", 0) or 0))


def batch(f: EvpnFabric, a: str, b: str, count: int, out: Series | None) -> None:
    """`count` migrations of m between `a` and `b` (from wherever it is), probed, under TCP."""
    seconds = count * (SPACING + 0.15) + 2.0
    server = f.popen(M.name, "iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    client = f.popen(P2.name, "iperf3", "-c", M.ip, "-t", f"{seconds:.0f}", "-b", "20M", "-J",
                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    probers: list[tuple[Prober, float]] = []
    watches: dict[str, FdbWatch] = {}
    events: dict[str, list[tuple[float, str, str]]] = {}
    moves: list[Move] = []
    try:
        for p in (P2, P4):
            watches[p.name] = FdbWatch(f, p.host, M.mac)
        for p in PEERS:
            probers.append((Prober(f, p, M.ip, seconds), time.monotonic()))
        time.sleep(0.5)
        for _ in range(count):
            here = f.where[M.name]
            moves.append(migrate(f, b if here == a else a))
            time.sleep(SPACING)
        gaps = {p.node: (p.gaps(), t) for p, t in probers}
        text, _ = client.communicate(timeout=seconds + 30)
        events = {peer: w.stop() for peer, w in watches.items()}
    finally:
        for p in (server, client, *(x.proc for x, _ in probers), *(w.proc for w in watches.values())):
            if p.poll() is None:
                p.kill()
                p.wait()
    if out is None:
        return
    for peer, (g, t) in gaps.items():
        out.gaps[peer] += [within(g, t, m.begin, m.end + AFTER) * 1000 for m in moves]
    for peer, ev in events.items():
        for m, until in zip(moves, [n.begin for n in moves[1:]] + [float("inf")]):
            for series, kind, dst in ((out.moved, "new", m.destination), (out.dropped, "del", m.source)):
                ms = first(ev, kind, vtep(dst), m.begin, until)
                if ms is not None:
                    series[peer].append(ms)
    out.tcp.append(survived(text, client.returncode))
    out.followed.append(followed(f))
    out.sequence.append(sequence(f))


def reachable(f: EvpnFabric, timeout: float = 20.0) -> None:
    for peer in PEERS:
        deadline = time.monotonic() + timeout
        while f.exec(peer, "ping", "-c1", "-W1", M.ip).returncode != 0:
            if time.monotonic() > deadline:
                raise LabError(f"{peer} does not reach m ({M.ip}) over EVPN after {timeout:.0f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=50, help="migrations per kind (counted ones)")
    ap.add_argument("--batch", type=int, default=10, help="migrations per probed batch (one TCP session each)")
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--quick", action="store_true", help="5 migrations per kind in one batch")
    ap.add_argument("--debug", action="store_true", help="FRR debugs on, logs kept in bench/results/evpn-logs/")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    if a.quick:
        a.count, a.batch = 5, 5
    kinds = [k for k in a.kinds.split(",") if k]
    if a.count < 1 or a.batch < 1 or not kinds or any(k not in KINDS for k in kinds):
        ap.error(f"--count and --batch must be >= 1, --kinds among {', '.join(KINDS)}")
    main_pid = os.getpid()
    # timeout(1)'s SIGTERM takes the fabric down; a forked child just leaves
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("SIGTERM: taking the fabric down") if os.getpid() == main_pid
                  else os._exit(143))
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    started = time.monotonic()
    results = {k: Series() for k in kinds}
    with EvpnFabric((M, P2, P4), debug=a.debug, progress=log) as f:
        log(f"fabric up in {time.monotonic() - started:.1f} s")
        reachable(f)
        echo = Echo(f, M.name)
        try:
            for k in kinds:
                x, y = KINDS[k]
                batch(f, x, y, WARMUP, None)
                done = 0
                while done < a.count:
                    n = min(a.batch, a.count - done)
                    batch(f, x, y, n, results[k])
                    done += n
                    s = results[k]
                    log(f"{k}: {done}/{a.count}, last batch p2 max {max(s.gaps['p2'][-n:]):.0f} ms, "
                        f"p4 max {max(s.gaps['p4'][-n:]):.0f} ms, TCP {s.tcp[-1]}, peers followed {s.followed[-1]}, "
                        f"sequence {s.sequence[-1]}")
        finally:
            echo.stop()
        versions = f.versions()
        flagged = {h: M.mac in f.vtysh(h, f"show evpn mac vni {VNI} duplicate") for h in HOSTS}
    report = {k: {"gap_ms": {peer: summary(s.gaps[peer]) for peer in PEERS},
                  "migrations": len(s.gaps[PEERS[0]]),
                  "tcp_survived": f"{sum(s.tcp)}/{len(s.tcp)}",
                  "peers_followed": f"{sum(s.followed)}/{len(s.followed)}",
                  "mobility_sequence": s.sequence,
                  "peer_vtep_moved_ms": {peer: summary(v) for peer, v in s.moved.items() if v},
                  "peer_vtep_dropped_old_ms": {peer: summary(v) for peer, v in s.dropped.items() if v},
                  "fdb_events_seen": {peer: [len(s.moved[peer]), len(s.dropped[peer])] for peer in PEERS},
                  "raw_gap_ms": {peer: [round(g, 1) for g in s.gaps[peer]] for peer in PEERS},
                  "raw_moved_ms": {peer: [round(x, 1) for x in s.moved[peer]] for peer in PEERS}}
              for k, s in results.items()}
    out = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "command": "python bench/evpn_peer.py " + " ".join(sys.argv[1:]),
           "code": subprocess.run(["git", "-C", str(HERE), "describe", "--always", "--dirty"], capture_output=True,
                                  text=True).stdout.strip(),
           "machine": {"cores": os.cpu_count(), "kernel": platform.release(), "python": platform.python_version()},
           "versions": versions, "frr_debug": a.debug, "count": a.count, "batch": a.batch,
           "hosts": {h: vtep(h) for h in HOSTS},
           "duplicate_flagged": flagged,  # FRR's DAD (warn-only) flagged m's MAC on these VTEPs
           "run_seconds": round(time.monotonic() - started, 1), "kinds": report}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2))
    print(f"{'kind':8} {'peer':4} {'n':>4} {'gap p50':>8} {'p99':>7} {'max':>7}  {'FDB moved p50':>13} {'p99':>7}  TCP")
    for k, r in report.items():
        for peer in PEERS:
            g, mv = r["gap_ms"][peer], r["peer_vtep_moved_ms"].get(peer, {})
            print(f"{k:8} {peer:4} {r['migrations']:>4} {g['p50']:>8} {g['p99']:>7} {g['max']:>7}  "
                  f"{mv.get('p50', '-'):>13} {mv.get('p99', '-'):>7}  {r['tcp_survived']}")
    print(f"(ms; FRR EVPN; {a.out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
