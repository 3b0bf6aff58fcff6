"""`tenet placement plan`: the placement advisor (compute/placement.py) on a lab's intent, read
through its hypervisor; `--apply` makes the moves as live migrations (hypervisor/placement.py)."""
from __future__ import annotations

from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tenet.cli.console import cells, fail, line, out, styled
from tenet.cli.vms import LAB, hypervisor, report_line
from tenet.compute.placement import Figures, Goal, Plan, PlacementError, plan
from tenet.hypervisor.placement import apply_plan
from tenet.model.errors import IntentError
from tenet.store.base import StoreError

placement_app = typer.Typer(no_args_is_help=True, help="Placement advisor: live migrations that bring each VN onto "
                                                        "fewer hosts, empty a host, or even out load")


@placement_app.command("plan")
def plan_cmd(
    goal: Goal = typer.Option(Goal.COLOCATE, "--goal", help="colocate: fewest hosts per VN; drain: empty --host; "
                              "balance: even out load under capacity"),
    host: Optional[str] = typer.Option(None, "--host", help="the host to empty (with --goal drain)"),
    lab: Optional[str] = LAB,
    apply: bool = typer.Option(False, "--apply", help="make the moves, one live migration at a time, stopping at the "
                               "first that fails"),
) -> None:
    """Print the migrations toward a goal with before/after figures (hosts per VN, broadcast
    copies, translated and encapsulated peer pairs) and the hosts left empty; --apply makes them."""
    if goal is Goal.DRAIN and not host:
        fail("--goal drain needs --host HOST (the host to empty)")
    if goal is not Goal.DRAIN and host:
        fail(f"--host goes with --goal drain, not {goal.value}")
    hv = hypervisor(lab)
    try:
        p = plan(hv.intent(), goal, host)
    except (PlacementError, IntentError, StoreError) as e:
        fail(str(e))
    show(p, out)
    if not apply or not p.moves:
        return
    out.print(f"\napplying {len(p.moves)} move(s) as live migrations", highlight=False)
    applied = apply_plan(hv, p, on_report=lambda r: out.print(report_line(r), highlight=False))
    if not applied.complete:
        m = applied.failed
        made = ", ".join(f"{r.vm} {r.source} -> {r.destination}" for r in applied.done) or "none"
        fail(f"stopped at {m.vm} {m.source} -> {m.destination}: {applied.error}\n"
              f"moves made before it stay made ({len(applied.done)} of {len(p.moves)}): {made}")
    out.print(f"done: {len(applied.done)} migration(s)", highlight=False)


def show(p: Plan, console: Console) -> None:
    """The plan as an operator reads it: the moves, the figures before and after, what is left."""
    title = f"placement plan: {p.goal.value}" + (f" {p.drain}" if p.drain else "")
    console.print(styled(title, "bold"))
    for o in p.overloaded:
        console.print(line(("over capacity:", "yellow"), f" {o.host} holds {', '.join(o.exceeded)}"))
    if p.moves:
        moves = Table("#", "VM", "from", "to", "why", title="moves (live migrations, in this order)")
        for i, m in enumerate(p.moves, 1):
            moves.add_row(*cells(i, m.vm, m.source, m.destination, m.why))
        console.print(moves)
    else:
        console.print(Text("no moves"))
    console.print(figures_table(p.before, p.after))
    if p.unmoved:
        console.print(Text("not moved:"))
        for u in p.unmoved:
            console.print(Text(f"  {u.vm} on {u.host}: {u.reason}"))
    if p.idle:
        emptied = f" (emptied by the plan: {', '.join(p.emptied)})" if p.emptied else ""
        console.print(Text(f"hosts holding no VM, could be powered off: {', '.join(p.idle)}{emptied}"))
    if p.uncapped:
        console.print(Text(f"never targets (no capacity declared): {', '.join(p.uncapped)}"))


def figures_table(before: Figures, after: Figures) -> Table:
    t = Table("", "before", "after", title="figures")
    rows = [
        ("hosts per VN: total", before.total, after.total),
        ("hosts per VN: mean", f"{before.mean:.2f}", f"{after.mean:.2f}"),
        ("hosts per VN: max", before.max, after.max),
        *((f"  {vn}", n, dict(after.hosts_per_vn).get(vn, 0)) for vn, n in before.hosts_per_vn),
        ("broadcast copies per broadcast (sum over VNs)", before.broadcast_copies, after.broadcast_copies),
        ("peer pairs translated (one physical network)", before.translated_pairs, after.translated_pairs),
        ("peer pairs encapsulated (across a router)", before.encapsulated_pairs, after.encapsulated_pairs),
        ("hosts holding VMs", before.busy_hosts, after.busy_hosts),
    ]
    for name, b, a in rows:
        t.add_row(*cells(name, b, a))
    return t
