"""`tenet trace` and `tenet verify`: a frame's path and the tables' isolation and reachability,
answered from the published tables alone (compute/trace.py, compute/verify.py). The store is
read through store/snapshot.py; nothing here builds a key."""
from __future__ import annotations

import json
import sys
from typing import Optional

import typer
from rich.table import Table

from tenet.cli.console import cells, err, fail, line, out, styled
from tenet.compute.tables import TablesError
from tenet.compute.trace import Snapshot, TraceError, trace
from tenet.compute.trace_steps import KIND, Deliver, Drop, describe
from tenet.compute.verify import verify
from tenet.model.errors import IntentError
from tenet.store.base import StoreError
from tenet.site import Site, SiteError
from tenet.store.snapshot import read_snapshot

COLOUR = {"source": "bold", "lookup": "cyan", "rewrite": "magenta", "encapsulate": "blue", "arrive": "cyan",
          "deliver": "green", "drop": "red", "resolve": "dim"}


def _snapshot(lab: Optional[str], store_url: Optional[str]) -> Snapshot:
    """--store URL (a deployment's), else the lab's (--lab NAME, or the one lab that is up)."""
    try:
        store = Site.open(lab, store_url).store()
    except (SiteError, StoreError) as e:
        fail(str(e))
    try:
        return read_snapshot(store)
    except (IntentError, StoreError, TablesError) as e:
        fail(str(e))
    finally:
        store.close()
    raise AssertionError("unreachable")


def trace_cmd(
    vm: str = typer.Option(..., "--from", help="the VM (or server, or attached TES) that sends"),
    to: str = typer.Option(..., "--to", help="destination MAC (ff:ff:ff:ff:ff:ff: broadcast) or IP"),
    nic: Optional[int] = typer.Option(None, "--nic", help="its NIC (default: the first)"),
    as_json: bool = typer.Option(False, "--json"),
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """Where a frame from a VM's NIC goes (like ovn-trace): each step, from the tables alone."""
    snap = _snapshot(lab, store_url)
    try:
        t = trace(snap, vm, to, nic)
    except TraceError as e:
        fail(str(e))
    if as_json:
        sys.stdout.write(json.dumps(t.to_dict(), indent=1) + "\n")
        return
    table = Table(title=f"trace {vm}{f' NIC {nic}' if nic is not None else ''} → {to}")
    table.add_column("#", justify="right")
    table.add_column("step")
    table.add_column("what")
    for i, s in enumerate(t.steps, 1):
        kind = KIND[type(s)]
        table.add_row(*cells(i, styled(kind, COLOUR[kind]), describe(s)))
    out.print(table)
    delivered = [s for s in t.steps if isinstance(s, Deliver)]
    where = ", ".join(f"{d.host}:{d.port}" for d in delivered)
    if delivered:
        out.print(f"delivered to {len(delivered)} port(s): {where}", highlight=False)
    elif any(isinstance(s, Drop) for s in t.steps):
        out.print(line(("dropped", "red"), ": delivered nowhere"))


def verify_cmd(
    as_json: bool = typer.Option(False, "--json"),
    lab: Optional[str] = typer.Option(None, "--lab"),
    store_url: Optional[str] = typer.Option(None, "--store"),
) -> None:
    """Isolation and reachability over every host's tables: no entry delivers into another VN,
    every endpoint reaches every other of its VN, every reverse entry answers a forward one.
    Exits 1 when there is any finding."""
    snap = _snapshot(lab, store_url)
    findings = verify(snap)
    if as_json:
        sys.stdout.write(json.dumps({"findings": [f.to_dict() for f in findings]}, indent=1) + "\n")
    elif findings:
        table = Table(title=f"{len(findings)} finding(s)")
        for c in ("kind", "host", "VN", "entry", "detail"):
            table.add_column(c)
        for f in findings:
            table.add_row(*cells(styled(f.kind.value, "red"), f.host, f.vn, f.entry, f.detail))
        out.print(table)
    else:
        vns = sum(len(t.vns) for t in snap.tables.values())
        out.print(f"no findings: {vns} VN table(s) on {len(snap.tables)} host(s) isolated and reachable", highlight=False)
    if findings:
        err.print(line(("verify:", "red"), f" {len(findings)} finding(s): the tables cross VNs or leave endpoints unreachable"))
        raise typer.Exit(1)
