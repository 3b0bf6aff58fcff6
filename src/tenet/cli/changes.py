"""How `tenet apply` shows a plan: + added, - removed, ~ changed (field: old → new)."""
from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.text import Text

from tenet.cli.console import line

from tenet.model.diff import Change, ChangeKind
from tenet.store.apply import ApplyPlan

MARK = {ChangeKind.ADDED: ("+", "green"), ChangeKind.REMOVED: ("-", "red"), ChangeKind.CHANGED: ("~", "yellow")}
SECRET = ("password",)  # shown as changed, never as text


def _value(path: str, value: Any) -> str:
    if value is None:
        return "(none)"
    if path.rsplit(".", 1)[-1] in SECRET:
        return "***"
    return value if isinstance(value, str) else json.dumps(value)


def lines(change: Change) -> list[Text]:
    """The item, then its fields (a removed item's are left out), each printed as written."""
    mark, colour = MARK[change.kind]
    out = [line((f"{mark} {change.item}", colour))]
    if change.kind is ChangeKind.ADDED:
        out += [Text(f"    {f.path}: {_value(f.path, f.new)}") for f in change.fields]
    elif change.kind is ChangeKind.CHANGED:
        out += [Text(f"    {f.path or 'value'}: {_value(f.path, f.old)} → {_value(f.path, f.new)}") for f in change.fields]
    return out


def show(console: Console, plan: ApplyPlan) -> None:
    if plan.installs_fabric:
        f = plan.after.fabric
        console.print(line((f"+ fabric {plan.after.name}", "green"), f": {len(f.networks)} physical networks, "
                           f"{len(f.routers)} routers, {len(f.hosts)} hosts (a first install)"))
    if plan.empty:
        console.print(Text("no changes"))
        return
    for change in plan.changes:
        for text in lines(change):
            console.print(text)
    counts = {k: sum(c.kind is k for c in plan.changes) for k in ChangeKind}
    console.print(Text(f"{counts[ChangeKind.ADDED]} to add, {counts[ChangeKind.CHANGED]} to change, "
                       f"{counts[ChangeKind.REMOVED]} to remove (tenancy revision {plan.revision})"))
