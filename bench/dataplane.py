"""iperf3 throughput of each addressing function against baselines measured in the same run.

Baselines, all in the same lab and the same run: the bare underlay between the same two hosts
(veth through the physical-network bridge, and through the router), and hand-configured kernel
VXLAN between hosts a and c, both host to host and VM to VM (bridge + VXLAN typed by hand, no
agent). Every figure is reported as a ratio to its baseline. Writes JSON to bench/results/.

The hand-made VXLAN uses UDP port 4799: on 4789 the agent's underlay guard drops every VNI
it does not implement (agent/underlay_guard.py). The guard's own cost is measured as the
VM-to-VM hand VXLAN once more with the same guard (rendered for its VNIs and port) hooked on
both uplinks, in a table of the benchmark's own, interleaved with the rest. The agent's own
guard cannot be switched off (it swaps its table back), so its cost on the translated path is
bounded from the other side: translate L2 once more with a second, identical guard hook on
hosts a and b (what one more guard costs there is what the agent's costs).

    .venv/bin/python bench/dataplane.py [--seconds 4] [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from tenet.agent import underlay_guard
from tenet.compute.tables import HostTables, VnTable
from tenet.lab.lab import Lab

HERE = Path(__file__).parent
HAND_VXLAN = ("10.255.0.1", "10.255.0.2")
HAND_VM = ("10.254.0.1", "10.254.0.2")
HAND_PORT = 4799
HAND_VNIS = (9999, 9998)
GUARD_TABLE = "benchguard"


def iperf(lab: Lab, client: str, server: str, ip: str, seconds: float) -> float:
    srv = lab.popen(server, "iperf3", "-s", "-1", "-B", ip, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            if lab.exec(server, "ss", "-ltn", "sport = :5201").stdout.count("LISTEN"):
                break
            time.sleep(0.05)
        r = lab.exec(client, "iperf3", "-c", ip, "-t", str(seconds), "-J", timeout=seconds + 30)
        data = json.loads(r.stdout)
        if "error" in data:
            raise RuntimeError(f"iperf3 {client}->{server}: {data['error']}")
        return data["end"]["sum_received"]["bits_per_second"]
    finally:
        srv.wait(10)


def _run(lab: Lab, node: str, *argv: str) -> None:
    r = lab.exec(node, *argv)
    if r.returncode:
        raise RuntimeError(f"{node}: {' '.join(argv)}: {r.stderr.strip()}")


def hand_vxlan(lab: Lab) -> None:
    """Baselines an operator would type by hand, in the same lab's namespaces, no agent involved:
    a VXLAN device on each of hosts a and c (host to host), and VMs ha, hc wired by veth to a
    bridge holding a VXLAN device (VM to VM, the same kernel path tenet's encapsulation uses)."""
    a, c = lab.intent.fabric.host("a"), lab.intent.fabric.host("c")
    for host, vm, local, remote, ip, vmip in (
        ("a", "ha", a, c, HAND_VXLAN[0], HAND_VM[0]),
        ("c", "hc", c, a, HAND_VXLAN[1], HAND_VM[1]),
    ):
        common = ["local", str(local.ip), "remote", str(remote.ip), "dstport", str(HAND_PORT), "ttl", "16"]
        _run(lab, host, "ip", "link", "add", "hvx0", "type", "vxlan", "id", "9999", *common)
        _run(lab, host, "ip", "link", "set", "hvx0", "mtu", "1500", "up")
        _run(lab, host, "ip", "addr", "add", f"{ip}/24", "dev", "hvx0")
        _run(lab, host, "ip", "link", "add", "hbr", "type", "bridge")
        _run(lab, host, "ip", "link", "add", "hvx1", "type", "vxlan", "id", "9998", *common, "nolearning")
        _run(lab, host, "ip", "link", "set", "hvx1", "mtu", "1500", "master", "hbr", "up")
        _run(lab, host, "ip", "link", "add", "hvp", "type", "veth", "peer", "name", "eth0", "netns", lab.netns(vm))
        _run(lab, host, "ip", "link", "set", "hvp", "master", "hbr", "up")
        _run(lab, host, "ip", "link", "set", "hbr", "up")
        _run(lab, vm, "ip", "addr", "add", f"{vmip}/24", "dev", "eth0")
        _run(lab, vm, "ip", "link", "set", "eth0", "up")
    # static FDB both ways, as tenet installs it (no flooding, no learning)
    for host, vm, remote in (("a", "hc", c), ("c", "ha", a)):
        mac = lab.exec(vm, "cat", "/sys/class/net/eth0/address").stdout.strip()
        _run(lab, host, "bridge", "fdb", "add", mac, "dev", "hvx1", "master", "static")
        _run(lab, host, "bridge", "fdb", "add", mac, "dev", "hvx1", "dst", str(remote.ip), "self")
        _run(lab, host, "bridge", "fdb", "append", "00:00:00:00:00:00", "dev", "hvx1", "dst", str(remote.ip), "self")


GUARDED = {"hand_vxlan_vms_guarded": ("a", "c"), "translate_l2_guarded_twice": ("a", "b")}


def guard(lab: Lab, on: bool, pair: tuple[str, str]) -> None:
    """The underlay guard for the hand-made VXLAN on a pair of hosts (its VNIs from each other
    only), in a table of the benchmark's own: added, or removed."""
    hosts = [lab.intent.fabric.host(n) for n in pair]
    peers = tuple(sorted(str(h.ip) for h in hosts))
    for h in hosts:
        if not on:
            _run(lab, h.name, "nft", "delete", "table", "netdev", GUARD_TABLE)
            continue
        vns = tuple(VnTable(vn=f"hand{v}", vnid=v, bum="replicate", group="", entries=(), reverse=(),
                            underlay_peers=peers) for v in HAND_VNIS)
        text = "".join(underlay_guard.chains(HostTables(h.name, str(h.ip), h.uplink, vns), port=HAND_PORT))
        with tempfile.NamedTemporaryFile("w", suffix=".nft") as script:
            script.write(f"table netdev {GUARD_TABLE} {{\n{text}}}\n")
            script.flush()
            _run(lab, h.name, "nft", "-f", script.name)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    results: dict[str, list[float]] = {}
    with Lab.load(HERE / "dataplane.yaml") as lab:
        hand_vxlan(lab)
        f = lab.intent.fabric
        cases = {
            "underlay_same_network": ("a", "b", str(f.host("b").ip)),
            "underlay_routed": ("a", "c", str(f.host("c").ip)),
            "hand_vxlan_hosts": ("a", "c", HAND_VXLAN[1]),
            "hand_vxlan_vms": ("ha", "hc", HAND_VM[1]),
            "hand_vxlan_vms_guarded": ("ha", "hc", HAND_VM[1]),
            "no_modification": ("s1", "s2", "10.70.0.2"),
            "translate_l2": ("s1", "t", "10.70.0.3"),
            "translate_l2_guarded_twice": ("s1", "t", "10.70.0.3"),
            "encapsulate": ("s1", "u", "10.70.0.4"),
        }
        for _ in range(args.repeat):  # interleaved, so drift hits every case alike
            for name, (cl, sv, ip) in cases.items():
                pair = GUARDED.get(name)
                if pair:
                    guard(lab, True, pair)
                try:
                    results.setdefault(name, []).append(iperf(lab, cl, sv, ip, args.seconds))
                finally:
                    if pair:
                        guard(lab, False, pair)
                print(f"{name:24s} {results[name][-1] / 1e9:7.2f} Gbit/s", file=sys.stderr)
    med = {k: statistics.median(v) for k, v in results.items()}
    ratios = {
        "translate_l2 / underlay_same_network": med["translate_l2"] / med["underlay_same_network"],
        "encapsulate / hand_vxlan_vms": med["encapsulate"] / med["hand_vxlan_vms"],
        "hand_vxlan_vms_guarded / hand_vxlan_vms": med["hand_vxlan_vms_guarded"] / med["hand_vxlan_vms"],
        "translate_l2_guarded_twice / translate_l2": med["translate_l2_guarded_twice"] / med["translate_l2"],
        "encapsulate / hand_vxlan_hosts": med["encapsulate"] / med["hand_vxlan_hosts"],
        "encapsulate / underlay_routed": med["encapsulate"] / med["underlay_routed"],
        "no_modification / underlay_same_network": med["no_modification"] / med["underlay_same_network"],
    }
    out = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python bench/dataplane.py " + " ".join(sys.argv[1:]),
        "seconds": args.seconds,
        "repeat": args.repeat,
        "gbit_per_s_median": {k: round(v / 1e9, 3) for k, v in med.items()},
        "gbit_per_s_all": {k: [round(x / 1e9, 3) for x in v] for k, v in results.items()},
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        # each round's guarded run over the unguarded one measured just before it: the spread is the noise
        "guard_pairs": {name: [round(g / u, 3) for g, u in zip(results[name], results[base])]
                        for name, base in (("hand_vxlan_vms_guarded", "hand_vxlan_vms"),
                                           ("translate_l2_guarded_twice", "translate_l2"))},
    }
    dest = HERE / "results"
    dest.mkdir(exist_ok=True)
    path = dest / f"dataplane-{out['date'][:19].replace(':', '')}.json"
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))
    print(f"written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
