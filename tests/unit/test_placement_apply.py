"""Applying a placement plan (hypervisor/placement.py): a real Hypervisor on a real store (SQLite),
its backend a recorder of the ports it hands over (the lab's namespaces are tested in
tests/lab/test_placement.py). Moves are made in order; the first refused or failed one stops
the rest, and those made stay made."""
from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from tenet.compute.placement import Move, plan
from tenet.hypervisor.errors import HypervisorError
from tenet.hypervisor.manager import Hypervisor
from tenet.hypervisor.placement import apply_plan
from tenet.model.load import load_intent
from tenet.model.tenancy import Intent, Vm
from tenet.store.intent import write_intent
from tenet.store.open import open_store

DOC = """
name: tapply
underlay:
  networks:
    pn1: {subnet: 198.18.1.0/24}
hosts:
  h1: {network: pn1, capacity: 4}
  h2: {network: pn1, capacity: 1}
  h3: {network: pn1, capacity: 1}
networks:
  blue: {vnid: 10}
vms:
  a: {host: h1, network: blue}
  b: {host: h2, network: blue}
  c: {host: h3, network: blue}
"""


class Ports:
    """The backend's side of a migration, recorded; `broken` VMs' ports refuse to move."""

    def __init__(self, broken: set[str] = frozenset()) -> None:
        self.moved: list[tuple[str, str]] = []
        self.broken = broken

    def move_port(self, intent: Intent, vm: Vm, i: int, to: str) -> None:
        if vm.name in self.broken:
            raise HypervisorError(f"{vm.name}'s port would not move")
        self.moved.append((vm.name, to))

    def serving(self, vm: Vm) -> bool:
        return True

    def announce(self, vm: Vm) -> None:
        pass


@pytest.fixture
def hv(tmp_path):
    def make(broken: set[str] = frozenset()) -> Hypervisor:
        url = f"sqlite:///{tmp_path / 'store.db'}"
        store = open_store(url)
        try:
            write_intent(store, load_intent(yaml.safe_load(DOC)))
        finally:
            store.close()
        return Hypervisor(url, Ports(broken), settle=lambda _: None)  # type: ignore[arg-type]
    return make


def hosts(hv: Hypervisor) -> dict[str, str]:
    return {vm.name: vm.host for vm in hv.intent().vms}


def test_every_move_made_in_order(hv):
    h = hv()
    p = plan(h.intent(), "colocate")
    assert [(m.vm, m.destination) for m in p.moves] == [("b", "h1"), ("c", "h1")]
    heard = []
    applied = apply_plan(h, p, on_report=heard.append)
    assert applied.complete and [r.vm for r in applied.done] == ["b", "c"] == [r.vm for r in heard]
    assert all(r.live and r.destination == "h1" for r in applied.done)
    assert hosts(h) == {"a": "h1", "b": "h1", "c": "h1"} and h.vms.moved == [("b", "h1"), ("c", "h1")]


def test_the_first_failure_stops_the_rest_and_what_was_done_stays(hv):
    h = hv(broken={"c"})
    p = plan(h.intent(), "colocate")
    applied = apply_plan(h, p)
    assert not applied.complete and [r.vm for r in applied.done] == ["b"]
    assert applied.failed == p.moves[1] and applied.error == "c's port would not move"
    intent = h.intent()
    assert hosts(h) == {"a": "h1", "b": "h1", "c": "h3"}
    c = next(v for v in intent.vms if v.name == "c")
    assert c.migrating_to == "h1"  # pre-staged: `tenet vm migrate c --to h1` resumes it


def test_a_plan_the_intent_has_outgrown_is_refused_before_anything_moves(hv):
    h = hv()
    p = plan(h.intent(), "colocate")
    h.set("b", host="h3")  # someone moved b meanwhile (h3 now over its capacity of 1)
    applied = apply_plan(h, p)
    assert applied.done == () and applied.error == "b is on h3 now, not h2 as planned"
    assert apply_plan(h, replace(p, moves=(Move("c", "h3", "h2", "by hand"),))).complete  # h2 has room again
    again = apply_plan(h, replace(p, moves=(Move("a", "h1", "h2", "by hand"),)))
    assert again.error == "h2 has no room for a now" and hosts(h)["a"] == "h1"
