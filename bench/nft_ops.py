"""What one nftables change costs on an agent's host: the agent's whole-table swap against
refilling one regular chain and adding one map element (the incremental alternative).

    flock /tmp/tenet-lab.lock timeout 600 .venv/bin/python bench/nft_ops.py [--rounds 50]

Lab bench/peer_ovn.yaml; in h1's and h2's namespaces a copy of the agent's `netdev tenet`
table under another name (the agent's own is never touched), each operation through
libnftables in-process as the agent does it. Prints median and max per operation, in ms.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tenet.lab.lab import Lab

HERE = Path(__file__).parent
PROBE = r"""
import re, statistics, sys, time
import nftables
nft, rounds = nftables.Nftables(), int(sys.argv[1])
rc, text, err = nft.cmd("list table netdev tenet")
assert rc == 0, err
text = re.sub(r"counter packets \d+ bytes \d+", "counter", text).replace("table netdev tenet", "table netdev nftops")

def run(cmd):
    rc, _, e = nft.cmd(cmd)
    assert rc == 0, e

def timed(f):
    xs = []
    for i in range(rounds):
        t = time.monotonic(); f(i); xs.append((time.monotonic() - t) * 1e3)
    return f"{statistics.median(xs):.2f} / {max(xs):.2f}"

print("whole-table swap", timed(lambda i: run("table netdev nftops {}\ndelete table netdev nftops\n" + text)))
m = re.search(r"\tchain (vn\d+_in) \{\n(.*?)\n\t\}", text, re.S)
rules = [l.strip() for l in m.group(2).splitlines() if l.strip()]
print("refill one chain", timed(lambda i: run(f"flush chain netdev nftops {m.group(1)}\n"
                                               + "\n".join(f"add rule netdev nftops {m.group(1)} {r}" for r in rules))))
run("add map netdev nftops m { type ether_addr : ether_addr ; }")
print("add map element", timed(lambda i: run(f"add element netdev nftops m {{ 02:00:00:00:{i // 256:02x}:{i % 256:02x} : 06:00:00:00:00:01 }}")))
run("delete table netdev nftops")
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=50)
    a = ap.parse_args()
    with Lab.load(HERE / "peer_ovn.yaml") as lab:
        lab.wait_attached("a0", timeout=20)
        for host in ("h1", "h2"):
            r = lab.exec(host, sys.executable, "-c", PROBE, str(a.rounds), check=True)
            print(f"{host} (median / max ms):\n{r.stdout}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
