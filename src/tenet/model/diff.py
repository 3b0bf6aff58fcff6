"""What changes between two tenancies, item by item and field by field. Pure.

Computed on the canonical documents (model/load.py intent_to_doc), so a change is named in
the words of the file an operator edits: `vms.web.nics[0].network: blue → red`. A field is a
leaf of the item's document, its path in dots and [indexes]; a field absent on one side is
None there. `tenet apply` shows these before it writes (store/apply.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from tenet.model.load import intent_to_doc
from tenet.model.parts import split
from tenet.model.tenancy import Intent

# the tenancy's named items, in the order a diff lists them (a document section -> its items)
SECTIONS = ("tenants", "networks", "vms", "aaa.users", "servers", "vrouters", "vlinks")


class ChangeKind(str, Enum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclass(frozen=True)
class FieldChange:
    path: str  # within the item: "nics[0].ip"; "" for a scalar item
    old: Any  # None: absent before
    new: Any  # None: absent after


@dataclass(frozen=True)
class Change:
    section: str  # one of SECTIONS
    name: str
    kind: ChangeKind
    fields: tuple[FieldChange, ...]  # added: every field (old None); removed: every field (new None)

    @property
    def item(self) -> str:
        return f"{self.section}.{self.name}"


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Leaves of a document by path; an empty mapping or list is a leaf of its own."""
    if isinstance(value, dict) and value:
        return {k: v for key, sub in value.items() for k, v in flatten(sub, f"{path}.{key}" if path else str(key)).items()}
    if isinstance(value, list) and value:
        return {k: v for i, sub in enumerate(value) for k, v in flatten(sub, f"{path}[{i}]").items()}
    return {path: value}


def field_changes(old: Any, new: Any) -> tuple[FieldChange, ...]:
    """Every leaf that differs, in the order the documents list them (old's first)."""
    a, b = flatten(old), flatten(new)
    paths = list(dict.fromkeys([*a, *b]))
    return tuple(FieldChange(p, a.get(p), b.get(p)) for p in paths if a.get(p) != b.get(p))


def _items(tenancy: dict, section: str) -> dict[str, Any]:
    if section == "tenants":
        return {t: None for t in tenancy.get("tenants", [])}  # a name, no fields
    node: Any = tenancy
    for part in section.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def diff_documents(old: dict, new: dict) -> tuple[Change, ...]:
    """The changes from one tenancy document to another, section by section."""
    out: list[Change] = []
    for section in SECTIONS:
        a, b = _items(old, section), _items(new, section)
        for name in dict.fromkeys([*a, *b]):
            if name not in b:
                out.append(Change(section, name, ChangeKind.REMOVED, field_changes(a[name], None)))
            elif name not in a:
                out.append(Change(section, name, ChangeKind.ADDED, field_changes(None, b[name])))
            elif a[name] != b[name]:
                out.append(Change(section, name, ChangeKind.CHANGED, field_changes(a[name], b[name])))
    return tuple(out)


def tenancy_doc(intent: Intent | None) -> dict:
    """The canonical tenancy part of an intent ({} for none)."""
    return split(intent_to_doc(intent))[1] if intent is not None else {}


def diff(before: Intent | None, after: Intent) -> tuple[Change, ...]:
    """What writing `after`'s tenancy over `before`'s changes (before None: nothing stored)."""
    return diff_documents(tenancy_doc(before), tenancy_doc(after))


def first_difference(old: dict, new: dict) -> FieldChange | None:
    """The first leaf where two documents differ (a fabric that must stay as it is)."""
    found = field_changes(old, new)
    return found[0] if found else None
