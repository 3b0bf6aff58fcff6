"""The seed's FIG. 3 datacenter, live: bring it up, show host 2's tables, prove reachability.

Run by `make demo`. Exits non-zero if any VM pair of a VN cannot talk or any VM is reached
from another VN.
"""
from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from tenet.cli.main import print_tables
from tenet.compute.tables import from_json
from tenet.lab.lab import Lab
from tenet.lab.reach import measure
from tenet.store import keys
from tenet.store.open import open_store

console = Console()
TOPOLOGY = Path(__file__).with_name("datacenter.yaml")


def matrix(result, vms: list[str]) -> Table:
    t = Table(title="reachability (✓ answered in its VN · ∅ isolated · ✗ FAILED · = same address)")
    t.add_column("from \\ to")
    for v in vms:
        t.add_column(v, justify="center")
    cell = {(p.src.vm, p.dst.vm): p for p in result.probes}
    for s in vms:
        row = []
        for d in vms:
            p = cell.get((s, d))
            if s == d:
                row.append("")
            elif p is None:
                row.append("=")
            elif p.src.vn == p.dst.vn:
                row.append("[green]✓[/green]" if p.answered and p.answer_mac == p.dst.mac else "[red]✗[/red]")
            else:
                row.append("[dim]∅[/dim]")
        t.add_row(s, *row)
    return t


def main() -> int:
    lab = Lab.load(TOPOLOGY, progress=lambda m: console.print(f"[dim]•[/dim] {m}"))
    with lab:
        store = open_store(lab.store_url)
        tables = from_json(store.get(keys.tables("host2")).value)
        console.rule("host 2 addressing mode tables (seed FIGS. 7A and 7B)")
        print_tables("host2", tables.generation, [tables.vn("N5"), tables.vn("N2")])
        console.rule("reachability: every VM NIC pings every other")
        result = measure(lab, lab.intent)
        vms = [v.name for v in lab.intent.vms]
        console.print(matrix(result, vms))
        same = sum(1 for p in result.probes if p.src.vn == p.dst.vn)
        console.print(f"{same} same-VN pairs, {len(result.probes) - same} cross-VN probes; "
                      f"echoes received per VM match what its own VN sent: "
                      f"{'yes' if not result.failures else 'NO'}")
        for f in result.failures:
            console.print(f"[red]FAIL[/red] {f}")
        console.rule("tearing down")
    console.print("lab removed")
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
