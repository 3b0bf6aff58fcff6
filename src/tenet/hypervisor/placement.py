"""A placement plan (compute/placement.py) made real: its moves one by one, each a live
migration (hypervisor/migration.py), in the plan's order, which keeps every host within its
capacity after each move. Before each, the move is checked against the intent as it is now
(another operator may have moved a VM since the plan was made); the first move that is
refused or fails stops the rest. A move made stays made — each is a whole migration — so a
stopped plan leaves the VMs where the moves so far put them, and says which."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tenet.compute.placement import Move, Plan, refusal
from tenet.hypervisor.errors import HypervisorError
from tenet.hypervisor.manager import Hypervisor
from tenet.hypervisor.migration import Report
from tenet.model.errors import IntentError
from tenet.store.base import StoreError


@dataclass(frozen=True)
class Applied:
    done: tuple[Report, ...]  # the migrations made, in order
    failed: Move | None = None  # the move that stopped the plan (None: every move made)
    error: str = ""  # why it stopped

    @property
    def complete(self) -> bool:
        return self.failed is None


def apply_plan(hv: Hypervisor, plan: Plan, on_report: Callable[[Report], None] = lambda _: None) -> Applied:
    """Make `plan`'s moves as live migrations; `on_report` hears each as it completes."""
    done: list[Report] = []
    for move in plan.moves:
        try:
            why = refusal(hv.intent(), move)
            if why:
                raise HypervisorError(why)
            report = hv.migrate(move.vm, move.destination)
        except (HypervisorError, IntentError, StoreError, OSError) as e:
            return Applied(tuple(done), move, str(e))
        done.append(report)
        on_report(report)
    return Applied(tuple(done))
