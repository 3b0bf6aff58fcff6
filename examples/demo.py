"""The seed's FIG. 3 datacenter, live: bring it up, show host 2's tables, prove reachability.

Run by `make demo`. Exits non-zero if a table row is not the addressing function the topology
implies, any NIC pair of a VN cannot talk, or any echo crosses from one VN to another. The
checks are tenet.lab.demo's, which tests/lab/test_demo.py runs too.
"""
from __future__ import annotations

import sys
from pathlib import Path

from tenet.cli.console import line, progress
from tenet.cli.console import out as console
from tenet.cli.main import print_tables
from tenet.lab.demo import check
from tenet.lab.lab import Lab
from tenet.lab.reach_view import LEGEND, render

TOPOLOGY = Path(__file__).with_name("datacenter.yaml")


def main() -> int:
    lab = Lab.load(TOPOLOGY, progress=progress)
    with lab:
        console.rule("checking every table row, then every NIC pinging every other NIC")
        result = check(lab)
        host2 = result.tables["host2"]
        console.rule("host 2 addressing mode tables (seed FIGS. 7A and 7B)")
        print_tables("host2", host2.generation, [host2.vn("N5"), host2.vn("N2")])
        console.rule("reachability")
        for legend in LEGEND:
            console.print(legend, style="dim")
        for row in render(result.reach):
            console.print(row.text, style=row.style or None, soft_wrap=True)
        same = sum(1 for p in result.reach.probes if p.src.vn == p.dst.vn)
        console.print(f"{len(result.reach.nics)} NICs: {same} same-VN probes, "
                      f"{len(result.reach.probes) - same} cross-VN probes; every table row as the "
                      f"topology implies and every echo where its VN sent it: "
                      f"{'yes' if not result.failures else 'NO'}")
        for f in result.failures:
            console.print(line(("FAIL", "red"), f" {f}"))
        console.rule("tearing down")
    console.print("lab removed")
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
