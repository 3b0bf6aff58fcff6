"""802.1X on behalf of VMs: time from a VM's port appearing on its host to its first packet
forwarded through the access switch, against FreeRADIUS driven directly in the same run.

    .venv/bin/python bench/proxy8021x.py [--rounds 100]

Each round VM P is created on host6 behind the access switch: its veth is staged under a
temporary name the host's proxy does not know (VM side fully configured: address, MAC and a
static neighbour entry for S, so that ARP is not counted), and P sends a UDP probe to S every
millisecond. t0 is the bench asking a helper in host6's namespace (started once, waiting on
its stdin with the staged port's index in hand) for one netlink request that renames the port
to P's port name, puts it in the host's bridge and sets it up — `ip link set tmpP name <port>
master br0 up`: the port appears to the proxy at t0, so EAP (EAPOL-Start, EAP-MD5 relayed to FreeRADIUS) runs after t0, the analogue of OVN's
setting a VIF's iface-id. S's sink notes the first arrival (CLOCK_MONOTONIC is shared by all
namespaces). Then the port is deleted (the proxy sends EAPOL-Logoff) and the driver waits until
the removal is published and applied, so every round starts from a quiet system. The old definition (`staged=False`:
the port is created under its own name, configured, then set up — t0 — so the proxy may
authenticate before t0) is kept for continuity. The ceiling: sequential EAP-MD5 logins by
pyrad straight at FreeRADIUS from the switch's namespace — the RADIUS part alone. Writes
JSON to bench/results/.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path

from tenet.lab.lab import Lab
from tenet.model.tenancy import port_name
from tenet.store import keys, published
from tenet.store.open import open_store
from tenet.store.records import AgentStatus

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from probe import PROBER, SINK, Prober, Sink  # noqa: E402
from stats import pct  # noqa: E402

STAGED = "tmpP"  # the port's name before it appears: no VM port the proxy knows
APPEAR = r"""
import sys
from pyroute2 import IPRoute
ipr = IPRoute()
print("ready", flush=True)
for line in sys.stdin:
    verb, name, arg = line.split()
    if verb == "stage":  # name: the staged port, arg: the bridge
        port, bridge = ipr.link_lookup(ifname=name)[0], ipr.link_lookup(ifname=arg)[0]
        print("staged", flush=True)
    else:  # appear as `name`; one request
        ipr.link("set", index=port, ifname=name, master=bridge, state="up")
        print("done", flush=True)
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


def port_up_rounds(lab: Lab, rounds: int, *, vm: str = "P", sink: str = "S", switch: str = "tor1",
                   staged: bool = True) -> list[float]:
    """`rounds` port-ups of 802.1X VM `vm` (on a host behind `switch`): per round, the seconds
    from the port appearing (`staged`: the request that makes it appear sent; else: after it was
    set up, some time after it was created) to the first packet at `sink` on another host."""
    py = sys.executable
    v = next(x for x in lab.intent.vms if x.name == vm)
    s = next(x for x in lab.intent.vms if x.name == sink)
    nic, snic, port, host = v.nics[0], s.nics[0], port_name(vm, 0), v.host
    store = open_store(lab.store_url)

    def authorized() -> bool:
        return store.get(keys.endpoint(switch, nic.network, nic.mac)) is not None

    def settled(h: str) -> bool:  # the tables lack the MAC and the agent applied them
        t, st = published.read(store, h), store.get(keys.status(h))
        listed = t is not None and any(e.destination == nic.mac for vt in t.vns for e in vt.entries)
        return not listed and bool(t and st) and AgentStatus.from_json(st.value).generation == t.generation

    def until(pred, what: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out: {what}")
            time.sleep(0.002)

    def batch(node: str, *lines: str) -> None:
        subprocess.run(["ip", "-n", lab.netns(node), "-batch", "-"], input="\n".join(lines) + "\n", text=True,
                       check=True)

    def ask(line: str, answer: str) -> None:
        appear.stdin.write(line + "\n")
        appear.stdin.flush()
        got = appear.stdout.readline().strip()
        if got != answer:
            raise RuntimeError(f"the port helper in {host} said {got!r} to {line!r} (code {appear.poll()})")

    vm_side = (f"link set eth0 address {nic.mac}", f"addr add {nic.ip} dev eth0", "link set eth0 up",
               f"neigh replace {snic.ip.ip} lladdr {snic.mac} dev eth0 nud permanent")
    latency: list[float] = []
    with ExitStack() as stack:
        stack.callback(store.close)
        until(authorized, f"{vm}'s first authorization", 20)
        lab.exec(sink, "ip", "neigh", "replace", str(nic.ip.ip), "lladdr", nic.mac, "dev", "eth0", "nud", "permanent",
                 check=True)
        appear = lab.popen(host, py, "-c", APPEAR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        stack.callback(lambda: (appear.kill(), appear.wait()))
        if appear.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the port helper in {host} did not start")
        probe = Sink(lab.popen(sink, py, "-c", SINK, stdout=subprocess.PIPE, text=True))
        stack.callback(probe.close)
        prober = Prober(lab.popen(vm, py, "-c", PROBER, str(snic.ip.ip), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True))
        stack.callback(prober.close)
        for i in range(rounds):
            lab.exec(host, "ip", "link", "del", port, check=True)  # the VM goes: logoff
            until(lambda: not authorized() and settled(switch) and settled(s.host), f"{vm}'s removal applied")
            if staged:
                lab.exec(host, "ip", "link", "add", STAGED, "type", "veth", "peer", "name", "eth0", "netns",
                         lab.netns(vm), check=True)
                batch(vm, *vm_side)
                ask(f"stage {STAGED} br0", "staged")
                prober.go(str(i))
                t0 = time.monotonic()  # the port appears: renamed, in the bridge and up, in one request
                ask(f"appear {port} -", "done")
            else:
                lab.exec(host, "ip", "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns",
                         lab.netns(vm), check=True)
                for line in vm_side:
                    lab.exec(vm, "ip", *line.split(), check=True)
                prober.go(str(i))
                lab.exec(host, "ip", "link", "set", port, "master", "br0", "up", check=True)
                t0 = time.monotonic()  # as bench/proxy8021x.py measured it first: after the port's set up
            latency.append(probe.first(str(i)) - t0)
    return latency


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    a = ap.parse_args()
    py = sys.executable
    with Lab.load(HERE / "proxy8021x.yaml") as lab:
        latency = port_up_rounds(lab, a.rounds, switch="tor1")
        old = port_up_rounds(lab, a.rounds, switch="tor1", staged=False)
        secret = (lab.record.dir / "radius.secret").read_text().strip()
        r = lab.exec("tor1", py, "-c", LOGINS, lab.plan.aaa[0].ip, secret, str(a.rounds), timeout=300)
        direct = json.loads(r.stdout)
    ms = lambda v: round(v * 1000, 1)  # noqa: E731
    dist = lambda v: {"p50": ms(statistics.median(v)), "p90": ms(pct(v, 90)), "p99": ms(pct(v, 99)),  # noqa: E731
                      "max": ms(max(v)), "measured": len(v)}
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": f"python bench/proxy8021x.py --rounds {a.rounds}",
        "rounds": a.rounds,
        "port_appears_to_first_packet_ms": dist(latency),
        "port_up_after_creation_to_first_packet_ms": dist(old),
        "direct_freeradius_eap_md5_login_ms": {"p50": ms(statistics.median(direct)), "p99": ms(pct(direct, 99))},
    }
    out = HERE / "results" / f"proxy8021x-{datetime.now(timezone.utc):%Y-%m-%dT%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
