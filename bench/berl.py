"""Berl et al.'s experiment (seed 001, Figures 5 and 6) on tenet, at 32 Mbit/s and at 1 Gbit/s.

    .venv/bin/python bench/berl.py [--phase 8] [--capacity 32mbit --capacity 1gbit] [--underlay flat --underlay routed]

examples/berl.yaml: two tenants' parallel overlays, each two virtual routers and one virtual
link, over one physical path shaped at the capacity (HTB on the hosts' uplinks). `--underlay
routed` puts rm2 on a second physical network (same capacity) behind one router, so the links'
frames cross it VXLAN-encapsulated instead of L2-translated; run with `flat` in the same
invocation, the flat run is its baseline. Both links
carry bulk TCP (iperf3, client site 1 -> site 2) the whole time. Phase 1: no guarantees, the
links share. Phase 2: vl1 gets a guarantee of 30/32 of the capacity, live. Phase 3: the
inverse — vl1 loses it and is limited to 2/32. Bandwidth is read off the uplink's HTB class
byte counters in rm1 every 5 ms (the wire, Ethernet headers included) and plotted against time
into docs/berl-<capacity>.png, as the seed's Figure 6.

Change latency: from the `set_link` call (a store edit) to the moment the kernel's class
carries the new rate, against a direct `tc class change` of the same class timed the same way
in the same run (the baseline: no store, controller or agent). Writes JSON to bench/results/.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import yaml

from tenet.lab.lab import Lab
from tenet.model.rate import parse_rate

HERE = Path(__file__).parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from stats import pct  # noqa: E402

SAMPLER = r"""
import json, sys, time
from pyroute2 import IPRoute
ipr = IPRoute()
idx = ipr.link_lookup(ifname="up0")[0]
while True:
    row = {"t": time.monotonic()}
    for c in ipr.get_classes(index=idx):
        if c["handle"] >> 16 == 0x7E03 and c.get_attr("TCA_KIND") == "htb":
            p = c.get_nested("TCA_OPTIONS", "TCA_HTB_PARMS")
            row[f"{c['handle'] & 0xFFFF:x}"] = [c.get_attr("TCA_STATS")["bytes"], p["rate"] * 8, p["ceil"] * 8]
    print(json.dumps(row), flush=True)
    time.sleep(0.005)
"""
VL = {"vl1": "10", "vl2": "11"}  # their uplink classes (compute/qos.py: by VN-ID order)


class Sampler:
    """The HTB counters of rm1's uplink, every 5 ms, from a process inside its namespace."""

    def __init__(self, lab: Lab) -> None:
        self.rows: list[dict] = []
        self.proc = lab.popen("rm1", sys.executable, "-c", SAMPLER, stdout=subprocess.PIPE, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()
        while not self.rows:
            time.sleep(0.01)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.rows.append(json.loads(line))

    def rate_seen(self, minor: str, since: float, rate: int, timeout: float = 5.0) -> float:
        """When the class first showed `rate` after `since` (seconds after since)."""
        deadline, seen = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            rows, seen = self.rows[seen:], len(self.rows)
            hit = next((r["t"] for r in rows if r["t"] >= since and r.get(minor, [0, 0])[1] == rate), None)
            if hit is not None:
                return hit - since
            time.sleep(0.005)
        raise TimeoutError(f"class {minor} never showed {rate} bit/s")

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def throughput(rows: list[dict], minor: str, window: float = 0.25) -> list[tuple[float, float]]:
    """(time, bit/s) over consecutive windows, from the byte counter (which starts again from
    zero when the agent re-creates the class for a new guarantee)."""
    out, start, sent, last = [], rows[0]["t"], 0, None
    for r in rows:
        if minor in r:
            now = r[minor][0]
            sent += now - last if last is not None and now >= last else now if last is not None else 0
            last = now
        if r["t"] - start >= window:
            out.append(((r["t"] + start) / 2, sent * 8 / (r["t"] - start)))
            start, sent = r["t"], 0
    return out


def mean_between(series, t0: float, t1: float) -> float:
    vals = [v for t, v in series if t0 <= t <= t1]
    return statistics.fmean(vals) if vals else 0.0


def routed(doc: dict) -> dict:
    """Berl's topology with rm2 on a second physical network, one router between."""
    nets = doc["underlay"]["networks"]
    nets["core2"] = {**nets["core"], "subnet": "198.19.73.0/24"}
    doc["underlay"]["routers"] = {"r": {"networks": ["core", "core2"]}}
    doc["hosts"]["rm2"]["network"] = "core2"
    return doc | {"name": "berlr"}


def run(capacity: str, phase: float, toggles: int, underlay: str = "flat") -> dict:
    cap = parse_rate(capacity)
    doc = yaml.safe_load((ROOT / "examples" / "berl.yaml").read_text())
    doc["underlay"]["networks"]["core"]["capacity"] = capacity
    if underlay == "routed":
        doc = routed(doc)
    guarantee, limit = f"{cap * 30 // 32 // 1000}kbit", f"{cap * 2 // 32 // 1000}kbit"
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(doc, f)
    with Lab.load(f.name) as lab:
        sampler = Sampler(lab)
        servers = [lab.popen(c, "iperf3", "-s", "-1", stdout=subprocess.DEVNULL) for c in ("ca2", "cb2")]
        time.sleep(0.5)
        seconds = str(int(3 * phase + 2))
        clients = [lab.popen(c, "iperf3", "-c", "10.1.2.10", "-t", seconds, stdout=subprocess.DEVNULL)
                   for c in ("ca1", "cb1")]
        t0 = time.monotonic()
        time.sleep(phase)
        t1 = time.monotonic()
        lab.set_link("vl1", guarantee=guarantee)
        lat_guarantee = sampler.rate_seen(VL["vl1"], t1, parse_rate(guarantee))
        time.sleep(t1 + phase - time.monotonic())
        t2 = time.monotonic()
        lab.set_link("vl1", guarantee="0", limit=limit)
        lat_limit = sampler.rate_seen(VL["vl1"], t2, 8000)
        time.sleep(t2 + phase - time.monotonic())
        t3 = time.monotonic()
        for p in clients + servers:
            p.wait(30)
        time.sleep(0.5)
        # change latency, traffic off: tenet's path against a direct tc change of the same class
        ours, direct = [], []
        for i in range(toggles):
            g = f"{(i % 2 + 1) * cap // 8 // 1000}kbit"
            t = time.monotonic()
            lab.set_link("vl2", guarantee=g)
            ours.append(sampler.rate_seen(VL["vl2"], t, parse_rate(g)))
        lab.stop_process("agent", "rm1")  # the baseline edits the agent's class behind its back
        for i in range(toggles):
            r = (i % 2 + 3) * cap // 8
            t = time.monotonic()
            lab.exec("rm1", "tc", "class", "change", "dev", "up0", "parent", "7e03:1", "classid", f"7e03:{VL['vl2']}",
                     "htb", "rate", f"{r}bit", "ceil", f"{cap}bit", check=True)
            direct.append(sampler.rate_seen(VL["vl2"], t, r))
        lab.restart_agent("rm1")
        lab.set_link("vl2", guarantee="0")
        sampler.stop()
        rows = sampler.rows
    series = {vl: [(t - t0, v) for t, v in throughput(rows, m) if t0 <= t <= t3] for vl, m in VL.items()}
    settle = min(2.0, phase / 4)
    phases = [(0, phase), (t1 - t0, t2 - t0), (t2 - t0, t3 - t0)]
    means = [{vl: mean_between(series[vl], a + settle, b) for vl in VL} for a, b in phases]
    plot(series, capacity, cap, [(t1 - t0, f"vl1 guarantee {guarantee}"), (t2 - t0, f"vl1 limit {limit}")], underlay)
    g_bps, l_bps = parse_rate(guarantee), parse_rate(limit)
    return {
        "capacity": capacity, "underlay": underlay, "phase_s": phase, "guarantee": guarantee, "limit": limit,
        "phase_means_mbit": [{k: round(v / 1e6, 2) for k, v in m.items()} for m in means],
        "guaranteed_share": round(means[1]["vl1"] / g_bps, 3),
        "limited_share": round(means[2]["vl1"] / l_bps, 3),
        "other_link_in_phase3_share": round(means[2]["vl2"] / (cap - l_bps), 3),
        "set_effective_ms": {"guarantee": round(lat_guarantee * 1e3, 1), "limit": round(lat_limit * 1e3, 1)},
        "change_ms": {"tenet_p50": round(pct(ours, 50) * 1e3, 1), "tenet_max": round(max(ours) * 1e3, 1),
                      "direct_tc_p50": round(pct(direct, 50) * 1e3, 1), "direct_tc_max": round(max(direct) * 1e3, 1),
                      "n": toggles},
    }


def plot(series, capacity: str, cap: int, marks, underlay: str = "flat") -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for vl, style in (("vl1", "-"), ("vl2", "--")):
        ax.plot([t for t, _ in series[vl]], [v / 1e6 for _, v in series[vl]], style, label=vl)
    for t, what in marks:
        ax.axvline(t, color="grey", linewidth=0.8)
        ax.annotate(what, (t, cap / 1e6 * 1.02), fontsize=8, ha="left")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("Mbit/s on the physical link (HTB counters)")
    ax.set_ylim(0, cap / 1e6 * 1.12)
    across = " (VXLAN across a router)" if underlay == "routed" else ""
    ax.set_title(f"Two virtual links sharing a {capacity} physical link{across} (tenet, after Berl et al. Fig. 6)",
                 fontsize=10)
    ax.legend(loc="center right")
    fig.tight_layout()
    fig.savefig(ROOT / "docs" / f"berl-{capacity}{'-routed' if underlay == 'routed' else ''}.png", dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--phase", type=float, default=8.0, help="seconds per phase")
    ap.add_argument("--capacity", action="append", help="physical link capacity (repeatable)")
    ap.add_argument("--toggles", type=int, default=20, help="re-ratings timed for the change latency")
    ap.add_argument("--underlay", action="append", choices=("flat", "routed"),
                    help="one physical network, or two joined by a router (repeatable; default flat)")
    args = ap.parse_args()
    results = [run(c, args.phase, args.toggles, u) for c in (args.capacity or ["32mbit", "1gbit"])
               for u in (args.underlay or ["flat"])]
    out = {"bench": "berl", "when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": results}
    dest = HERE / "results" / f"berl-{datetime.now(timezone.utc):%Y-%m-%dT%H%M%S}.json"
    print(json.dumps(out, indent=1))
    dest.parent.mkdir(exist_ok=True)
    dest.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
