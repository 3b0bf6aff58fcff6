"""Attach latency and admission rate through one NVE, against FreeRADIUS driven directly.

    .venv/bin/python bench/attach.py [--rounds 200] [--seconds 20] [--slices 4] [--workers 4] [--no-accounting]

Latency: from DISCOVER sent to the first packet delivered to a VM of the same VN on another
host (UDP, static ARP so that neighbour resolution is not counted), p50/p99 over `rounds`
sequential attaches. Rate: `tes` virtual TESs (bench/attach_load.py) attach and terminate
as fast as the NVE lets them for `seconds`; the ceiling is `workers` pyrad clients running
EAP-MD5 logins straight at FreeRADIUS from the NVE's namespace, in the same run: the two
alternate in `slices` (NVE, ceiling, NVE, ceiling, ...), so that drift in the machine's speed
weighs on both alike; the ratio is of the totals, and each slice pair's is listed too.
Writes JSON to bench/results/.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from attach_latency import latency as attach_latency, prepare, vm
from stats import pct, summary
from tenet.lab.lab import Lab

HERE = Path(__file__).parent
SETTLE = 3.0  # seconds between an NVE slice and the ceiling's: longer than the VN instance hold
CEILING = r"""
import sys, threading, time
from tenet.aaa.radius import RadiusClient
ip, secret, workers, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
count = [0] * workers
def work(i):
    c = RadiusClient(ip, secret, 1812)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert c.eap_md5_login(f"u{i % 4}", f"p{i % 4}").code == "accept"
        count[i] += 1
ts = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
[t.start() for t in ts]; [t.join() for t in ts]
print(sum(count))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=20, help="of load, for each side (NVE and ceiling)")
    ap.add_argument("--slices", type=int, default=4, help="alternating NVE/ceiling slices the seconds are cut into")
    ap.add_argument("--workers", type=int, default=4, help="pyrad threads for the direct ceiling")
    ap.add_argument("--tes", type=int, default=32, help="concurrent virtual TESs for the rate")
    ap.add_argument("--no-accounting", action="store_true",
                    help="the agents send no RADIUS accounting (control.accounting: false), to measure its cost")
    a = ap.parse_args()
    py = sys.executable
    topology = HERE / "attach.yaml"
    if a.no_accounting:
        topology = Path(tempfile.mkdtemp(prefix="tenet-bench-")) / "attach.yaml"
        topology.write_text((HERE / "attach.yaml").read_text() + "control: {accounting: false}\n")
    with Lab.load(topology) as lab:
        tess = [v for v in lab.intent.vms if v.name.startswith("a")][: a.workers]
        prepare(lab, tess, vm(lab, "S"))
        latency, attached = attach_latency(lab, tess[0], vm(lab, "S"), a.rounds)
        # admission rate through the NVE under a bounded load (`tes` virtual TESs), and the
        # direct ceiling, in alternating slices: a machine whose speed drifts during the run
        # (a shared VM does) weighs on both sides alike
        secret = (lab.record.dir / "radius.secret").read_text().strip()
        slice_s = a.seconds / a.slices
        admitted, direct, pairs = 0, 0, []
        for _ in range(a.slices):
            r = lab.exec(tess[0].name, py, str(HERE / "attach_load.py"), str(a.tes), str(slice_s), timeout=slice_s + 60)
            if r.returncode:
                raise RuntimeError(r.stderr[-2000:])
            time.sleep(SETTLE)  # the NVE's leftovers (a VN instance's hold, sessions timing out) stay out of the ceiling
            c = lab.exec("h1", py, "-c", CEILING, lab.plan.aaa[0].ip, secret, str(a.workers), str(slice_s), timeout=slice_s + 60)
            if c.returncode:
                raise RuntimeError(c.stderr[-2000:])
            n, d = int(r.stdout.strip()), int(c.stdout.strip())
            admitted, direct = admitted + n, direct + d
            pairs.append(round(n / d, 3) if d else None)
    ms = [x * 1000 for x in latency]
    out = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/attach.py " + " ".join(sys.argv[1:]),
        "rounds": len(ms),
        "attach_to_first_packet_ms": summary(ms),
        "discover_to_auth_result_ms_p50": round(pct([x * 1000 for x in attached], 50), 1),
        "admissions_per_s_through_nve": round(admitted / a.seconds, 1),
        "direct_freeradius_eap_md5_per_s": round(direct / a.seconds, 1),
        "ratio_nve_to_direct": round(admitted / direct, 3) if direct else None,
        "ratio_per_slice": pairs,
        "slices": a.slices,
        "virtual_tes": a.tes,
        "pyrad_workers": a.workers,
        "accounting": not a.no_accounting,
    }
    dest = HERE / "results"
    dest.mkdir(exist_ok=True)
    (dest / f"attach-{out['date'][:19].replace(':', '')}.json").write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
