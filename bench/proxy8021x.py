"""802.1X on behalf of VMs: time from a VM's port coming up to its first packet forwarded
through the access switch, against FreeRADIUS driven directly in the same run.

    .venv/bin/python bench/proxy8021x.py [--rounds 100] [--trace]

Each round the VM is created on host6 (a veth into its namespace, its address and a static
neighbour entry for S, so that ARP is not counted), its host-side port is set up in the host's
bridge — t0 — and the VM sends a UDP probe to S every millisecond; S's sink notes the first
arrival (CLOCK_MONOTONIC is shared by all namespaces). Then the VM is removed (its host sends
EAPOL-Logoff) and the driver waits until the switch has applied the removal, so each round
starts cold. The ceiling: sequential EAP-MD5 logins by pyrad straight at FreeRADIUS from the
switch's namespace — the RADIUS part alone. Writes JSON to bench/results/.
--trace also times the hops from the port's creation (the proxy acts on that, before t0):
the proxy's `trace` log lines (TENET_TRACE=1) give its wake, EAPOL-Start and EAP-Success.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tenet.lab.lab import Lab
from tenet.model.tenancy import port_name
from tenet.store import keys, published
from tenet.store.open import open_store
from tenet.store.records import AgentStatus

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from attach import pct  # noqa: E402

SINK = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 9999))
seen = set()
print("ready", flush=True)
while True:
    data, _ = s.recvfrom(64)
    now = time.monotonic()
    rnd = data.split()[0].decode()
    if rnd not in seen:
        seen.add(rnd)
        print(rnd, now, flush=True)
"""

PROBER = r"""
import socket, sys, threading, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rnd = [None]
def read():
    for line in sys.stdin:
        rnd[0] = line.strip() or None
threading.Thread(target=read, daemon=True).start()
while True:
    if rnd[0] is not None:
        try:
            s.sendto(f"{rnd[0]} {time.monotonic()}".encode(), (sys.argv[1], 9999))
        except OSError:
            pass  # no interface yet: the VM is still being created
    time.sleep(0.001)
"""
LOGINS = r"""
import json, sys, time
from tenet.aaa.radius import RadiusClient
ip, secret, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
c, out = RadiusClient(ip, secret, 1812), []
for _ in range(n):
    t = time.monotonic()
    assert c.eap_md5_login("vm-p", "s3cret").code == "accept"
    out.append(time.monotonic() - t)
print(json.dumps(out))
"""


def trace_hops(log: Path, mac: str, added: list[float], firsts: list[float], latency: list[float]) -> dict:
    """p50/p99 of each hop per round, from `ip link add` of P's port (the proxy acts on that)."""
    marks: dict[str, list[float]] = {"wake": [], "start": [], "success": []}
    for line in log.read_text().splitlines():
        f = line.split(" trace ", 1)[-1].split() if " trace " in line else []
        if len(f) == 3 and f[0] in marks and (f[0] == "wake" or f[1] == mac):
            marks[f[0]].append(float(f[2]))

    def after(kind: str, t: float) -> float:
        return min(x for x in marks[kind] if x >= t)

    rows: dict[str, list[float]] = {k: [] for k in ("add->wake", "wake->start", "add->start", "start->success",
                                                    "success->first", "add->up", "up->first", "add->first")}
    for t_add, first, lat in zip(added, firsts, latency):
        wake = after("wake", t_add)
        start = after("start", t_add)
        success = after("success", start)
        for k, v in (("add->wake", wake - t_add), ("wake->start", start - wake), ("add->start", start - t_add),
                     ("start->success", success - start),
                     ("success->first", first - success), ("add->up", first - lat - t_add), ("up->first", lat),
                     ("add->first", first - t_add)):
            rows[k].append(v)
    out = {k: {"p50": round(pct(v, 50) * 1000, 2), "p99": round(pct(v, 99) * 1000, 2)} for k, v in rows.items()}
    for k, v in out.items():
        print(f"{k:>16}  p50 {v['p50']:7.2f} ms  p99 {v['p99']:7.2f} ms", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--trace", action="store_true", help="time the hops from the port's creation (proxy trace lines)")
    a = ap.parse_args()
    if a.trace:
        os.environ["TENET_TRACE"] = "1"  # inherited by the lab's processes
    py = sys.executable
    with Lab.load(HERE / "proxy8021x.yaml") as lab:
        p = next(v for v in lab.intent.vms if v.name == "P")
        s = next(v for v in lab.intent.vms if v.name == "S")
        nic, port, vm_ns = p.nics[0], port_name("P", 0), lab.netns("P")
        store = open_store(lab.store_url)

        def authorized() -> bool:
            return store.get(keys.endpoint("tor1", "n2", nic.mac)) is not None

        def applied() -> bool:
            t, st = published.read(store, "tor1"), store.get(keys.status("tor1"))
            return bool(t and st) and AgentStatus.from_json(st.value).generation == t.generation

        def until(pred, what: str, timeout: float = 10.0) -> None:
            deadline = time.monotonic() + timeout
            while not pred():
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out: {what}")
                time.sleep(0.002)

        until(authorized, "P's first authorization", 20)
        lab.exec("S", "ip", "neigh", "replace", str(nic.ip.ip), "lladdr", nic.mac, "dev", "eth0", "nud", "permanent", check=True)
        sink = lab.popen("S", py, "-c", SINK, stdout=subprocess.PIPE, text=True)
        assert sink.stdout.readline().strip() == "ready"
        prober = lab.popen("P", py, "-c", PROBER, str(s.nics[0].ip.ip), stdin=subprocess.PIPE, text=True)
        latency: list[float] = []
        added: list[float] = []
        firsts: list[float] = []
        for i in range(a.rounds):
            lab.exec("host6", "ip", "link", "del", port, check=True)  # the VM goes: logoff
            until(lambda: not authorized() and applied(), "P's removal applied")
            added.append(time.monotonic())
            lab.exec("host6", "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", vm_ns, check=True)
            for cmd in (("ip", "link", "set", "eth0", "address", nic.mac), ("ip", "addr", "add", str(nic.ip), "dev", "eth0"),
                        ("ip", "link", "set", "eth0", "up"),
                        ("ip", "neigh", "replace", str(s.nics[0].ip.ip), "lladdr", s.nics[0].mac, "dev", "eth0", "nud", "permanent")):
                lab.exec("P", *cmd, check=True)
            prober.stdin.write(f"{i}\n")
            prober.stdin.flush()
            lab.exec("host6", "ip", "link", "set", port, "master", "br0", "up", check=True)
            t0 = time.monotonic()  # the VM's port is up in its host's bridge
            ready, _, _ = select.select([sink.stdout], [], [], 10)
            if not ready:
                raise RuntimeError(f"round {i}: no packet from P reached S in 10 s")
            rnd, t = sink.stdout.readline().split()
            assert rnd == str(i), (rnd, i)
            latency.append(float(t) - t0)
            firsts.append(float(t))
        prober.kill()
        sink.kill()
        secret = (lab.record.dir / "radius.secret").read_text().strip()
        r = lab.exec("tor1", py, "-c", LOGINS, lab.plan.aaa.ip, secret, str(a.rounds), timeout=300)
        direct = json.loads(r.stdout)
        store.close()
        hops = trace_hops(Path(lab.process("proxy", "host6").log), nic.mac, added, firsts, latency) if a.trace else None
    ms = lambda v: round(v * 1000, 1)  # noqa: E731
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": f"python bench/proxy8021x.py --rounds {a.rounds}" + (" --trace" if a.trace else ""),
        "rounds": a.rounds,
        "port_up_to_first_packet_ms": {"p50": ms(statistics.median(latency)), "p90": ms(pct(latency, 90)),
                                       "p99": ms(pct(latency, 99)),
                                       "max": ms(max(latency)), "measured": len(latency)},
        "direct_freeradius_eap_md5_login_ms": {"p50": ms(statistics.median(direct)), "p99": ms(pct(direct, 99))},
    }
    if hops is not None:
        result["trace_ms"] = hops
    out = HERE / "results" / f"proxy8021x-{datetime.now(timezone.utc):%Y-%m-%dT%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
