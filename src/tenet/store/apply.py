"""`tenet apply`: replace the tenancy of a running deployment with a document, as a whole.

Two steps, so an operator sees what will change before anything does: `plan_apply` reads the
store, validates the document against the fabric (every problem with its path) and computes
the diff; `apply` writes that plan's tenancy with a compare-and-swap on the revisions it was
computed from. A concurrent change makes it fail (ApplyConflict), never merge: the diff the
operator saw would no longer be what is written.

The document is a whole one (fabric and tenancy, like a lab's topology file) or the tenancy
alone. A whole document's fabric must be the stored one — as declared, or as `tenet get`
prints it with the registered hosts — since a fabric change is not apply's business; the
first difference is named. The one exception is a first install: a store with no fabric
yet takes a whole document, both parts in one revision.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tenet.model.diff import Change, diff, first_difference
from tenet.model.errors import IntentError, Problem
from tenet.model.fabric import Fabric
from tenet.model.load import intent_to_doc, load_fabric, load_intent, load_tenancy
from tenet.model.parts import FABRIC, LAB, split
from tenet.model.tenancy import Intent
from tenet.store import keys
from tenet.store.base import Compare, Put, Store, StoreError
from tenet.store.intent import composed_fabric, read_stored
from tenet.store.records import fabric_to_json, part_from_json, tenancy_to_json


class ApplyConflict(StoreError):
    """The store changed between plan and apply: the plan is stale."""

    def __init__(self, part: str, read: int, now: int) -> None:
        super().__init__(f"the {part} changed since it was read (revision {read}, now {now}): "
                         "run tenet apply again to see the new diff")
        self.part, self.read, self.now = part, read, now


@dataclass(frozen=True)
class ApplyPlan:
    """What `apply` will write, and what it was computed from."""

    revision: int  # the stored tenancy's mod revision (0: none stored)
    fabric_revision: int  # the stored fabric's (0: none: this apply installs it)
    before: Intent | None  # the intent as stored (None: a first install)
    after: Intent  # the document, validated and completed
    changes: tuple[Change, ...]  # the tenancy's, item by item

    @property
    def installs_fabric(self) -> bool:
        return self.fabric_revision == 0

    @property
    def empty(self) -> bool:
        return not self.changes and not self.installs_fabric


def plan_apply(store: Store, doc: Any, source: str = "") -> ApplyPlan:
    """Validate `doc` against the store and compute what writing it changes; writes nothing.
    IntentError lists every problem (or names the fabric's first difference)."""
    if not isinstance(doc, dict):
        raise IntentError((Problem("", "a document must be a mapping"),), source)
    fabric_doc, _ = split(doc)
    if store.get(keys.fabric()) is None:
        if not fabric_doc:
            raise IntentError((Problem("", "the store holds no fabric yet: a first apply gives a whole document "
                                           "(name, underlay, hosts and the tenancy)"),), source)
        after = load_intent(doc, source)
        tenancy = store.get(keys.tenancy())
        return ApplyPlan(tenancy.mod_revision if tenancy else 0, 0, None, after, diff(None, after))
    stored = read_stored(store)
    fabric = composed_fabric(stored)
    before = load_tenancy(part_from_json(stored.tenancy.value, "tenancy") if stored.tenancy else {},
                          fabric, stored.name, "store tenancy")
    if fabric_doc:
        _same_fabric(fabric_doc, stored.name, fabric, part_from_json(stored.fabric.value, "fabric"), source)
    tenancy = {k: v for k, v in doc.items() if k not in FABRIC | LAB}  # unknown keys are named by the loader
    after = load_tenancy(tenancy, fabric, stored.name, source)
    return ApplyPlan(stored.tenancy.mod_revision if stored.tenancy else 0, stored.fabric.mod_revision, before, after,
                     diff(before, after))


def apply(store: Store, plan: ApplyPlan) -> int | None:
    """Write the plan's tenancy (and, on a first install, its fabric) if the store is still
    what the plan was computed from; the revision written, None when there was nothing to.
    ApplyConflict otherwise: nothing is written."""
    if plan.empty:
        return None
    ops = [Put(keys.tenancy(), tenancy_to_json(plan.after))]
    if plan.installs_fabric:
        ops.insert(0, Put(keys.fabric(), fabric_to_json(plan.after)))
    ok, rev = store.txn([Compare(keys.fabric(), "mod", "==", plan.fabric_revision),
                         Compare(keys.tenancy(), "mod", "==", plan.revision)], ops)
    if ok:
        return rev
    now = {part: kv.mod_revision if (kv := store.get(key)) else 0
           for part, key in (("fabric", keys.fabric()), ("tenancy", keys.tenancy()))}
    if now["fabric"] != plan.fabric_revision:
        raise ApplyConflict("fabric", plan.fabric_revision, now["fabric"])
    raise ApplyConflict("tenancy", plan.revision, now["tenancy"])


def _canonical(fabric: Fabric, name: str) -> dict:
    return split(intent_to_doc(Intent(name, fabric, (), (), ())))[0]


def _same_fabric(doc: dict, name: str, composed: Fabric, declared: dict, source: str) -> None:
    """The document's fabric is the stored one, as declared or with its registered hosts."""
    theirs = _canonical(load_fabric(doc, source), str(doc.get("name")))
    ours = _canonical(load_fabric(declared, "store fabric"), name)
    if theirs in (ours, _canonical(composed, name)):
        return
    d = first_difference(ours, theirs)
    assert d is not None
    stored = "absent" if d.old is None else repr(d.old)
    given = "absent" if d.new is None else repr(d.new)
    raise IntentError((Problem(d.path, f"is {given} here but {stored} in the stored fabric: apply changes "
                                       "the tenancy only (a fabric change is not its business)"),), source)
