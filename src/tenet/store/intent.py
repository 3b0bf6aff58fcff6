"""The operator's intent in the store: two parts and the hosts' registrations, composed.

The fabric (`/tenet/fabric`) and the tenancy (`/tenet/tenancy`) are stored apart
(model/parts.py); every registered chassis (`/tenet/chassis/<host>`) adds or updates a host
of the fabric with what its agent saw on its uplink. An edit is read-modify-write of the
tenancy only, validated against the whole and written with a compare-and-swap on the
tenancy's revision: an invalid edit changes nothing, a concurrent one makes us re-read and
re-apply rather than lose it (`tenet apply` instead fails: it shows a diff against what it read).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network
from typing import Callable

from tenet.model.errors import IntentError, Problem
from tenet.model.fabric import Fabric
from tenet.model.load import intent_to_doc, load_fabric, load_tenancy
from tenet.model.parts import FABRIC, join, split
from tenet.model.tenancy import Intent
from tenet.store import keys
from tenet.store.base import Compare, KeyValue, Put, Store, StoreError
from tenet.store.records import Chassis, RecordError, fabric_to_json, part_from_json, tenancy_to_json

log = logging.getLogger("tenet.store")
ATTEMPTS = 5


@dataclass(frozen=True)
class Stored:
    """The parts as stored, with the revisions an edit compares against."""

    fabric: KeyValue
    tenancy: KeyValue | None  # None: nothing provisioned yet
    chassis: tuple[Chassis, ...]

    @property
    def name(self) -> str:
        return str(part_from_json(self.fabric.value, "fabric").get("name", ""))


def read_stored(store: Store) -> Stored:
    fabric = store.get(keys.fabric())
    if fabric is None:
        raise IntentError((Problem("", "the store holds no fabric (is the lab up? tenet apply a fabric first)"),), "store")
    return Stored(fabric, store.get(keys.tenancy()), read_chassis(store))


def read_chassis(store: Store) -> tuple[Chassis, ...]:
    out = []
    for kv in sorted(store.range(keys.chassis_prefix()), key=lambda kv: kv.create_revision):
        try:
            out.append(Chassis.from_json(kv.value))
        except RecordError as e:  # one bad registration must not hide every host
            log.error("%s ignored: %s", kv.key, e)
    return tuple(out)


def registered(fabric_doc: dict, chassis: tuple[Chassis, ...]) -> tuple[dict, tuple[Problem, ...]]:
    """The fabric document with each registered host in it (replacing a declared host of the
    same name: the agent reports what its uplink really has). A registration that does not
    fit the fabric — an unknown physical network, an address outside its subnet or already
    someone else's — is left out and named, never allowed to spoil the whole fabric. On a
    clash the earlier registration (the order given: read_chassis sorts by creation) keeps it."""
    doc = json.loads(json.dumps(fabric_doc))
    subnets = {n: spec.get("subnet") for n, spec in (doc.get("underlay", {}).get("networks") or {}).items()}
    taken = {str(a): f"router {r}" for r, spec in (doc.get("underlay", {}).get("routers") or {}).items()
             for a in (spec.get("addresses") or {}).values()}
    for section in ("hosts", "switches"):
        for h, spec in (doc.get(section) or {}).items():
            if isinstance(spec, dict) and "ip" in spec:
                taken[str(spec["ip"])] = f"host {h}"
    problems = []
    for c in chassis:
        where = f"chassis.{c.host}"
        try:
            address = IPv4Interface(c.address)
        except ValueError:
            problems.append(Problem(where, f"address {c.address!r} is not IPv4 address/prefix"))
            continue
        if c.network not in subnets:
            problems.append(Problem(where, f"no physical network named {c.network!r} in the fabric"))
            continue
        subnet = IPv4Network(subnets[c.network])
        if address.network != subnet or address.ip in (subnet.network_address, subnet.broadcast_address):
            problems.append(Problem(where, f"{c.address} is not a host address of {c.network} ({subnet})"))
            continue
        owner = taken.get(str(address.ip))
        if owner not in (None, f"host {c.host}"):
            problems.append(Problem(where, f"{address.ip} is taken by {owner}"))
            continue
        section, entry = c.fabric_entry()
        declared = (doc.get(section) or {}).get(c.host)
        if section == "hosts" and isinstance(declared, dict) and "capacity" in declared:
            entry["capacity"] = declared["capacity"]  # the operator's to say (model/capacity.py), not the agent's
        other = "switches" if section == "hosts" else "hosts"
        (doc.get(other) or {}).pop(c.host, None)
        doc.setdefault(section, {})[c.host] = entry  # a declared host keeps its place: the order allocates addresses
        taken[str(address.ip)] = f"host {c.host}"
    return doc, tuple(problems)


def compose(stored: Stored) -> Intent:
    """The intent the controller computes from: IntentError when the parts do not fit."""
    tenancy = part_from_json(stored.tenancy.value, "tenancy") if stored.tenancy else {}
    return load_tenancy(tenancy, composed_fabric(stored), stored.name, "store tenancy")


def composed_fabric(stored: Stored) -> Fabric:
    """The declared fabric with every registered host that fits it."""
    fabric_doc, problems = registered(part_from_json(stored.fabric.value, "fabric"), stored.chassis)
    for p in problems:
        log.warning("registration ignored: %s", p)
    return load_fabric(fabric_doc, "store fabric")


def read_tenancy(store: Store) -> tuple[dict, int]:
    """The stored tenancy as it is written (the canonical document's tenancy part: every
    write is of a validated intent), and its mod revision; one key read, no validation."""
    kv = store.get(keys.tenancy())
    return (part_from_json(kv.value, "tenancy"), kv.mod_revision) if kv else ({}, 0)


def read_intent(store: Store) -> Intent:
    return compose(read_stored(store))


def write_intent(store: Store, intent: Intent) -> int:
    """Both parts at once (a lab starting, a first install): one revision."""
    _, rev = store.txn([], [Put(keys.fabric(), fabric_to_json(intent)), Put(keys.tenancy(), tenancy_to_json(intent))])
    return rev


def edit_intent(store: Store, change: Callable[[dict], None]) -> Intent:
    """Apply `change` to the whole document (fabric and tenancy, as `tenet get` prints it) and
    write its tenancy; a change to the fabric part is refused. Returns the new intent."""
    for _ in range(ATTEMPTS):
        stored = read_stored(store)
        before = intent_to_doc(compose(stored))
        doc = json.loads(json.dumps(before))
        change(doc)
        fabric_doc, tenancy_doc = split(doc)
        if fabric_doc != split(before)[0]:
            raise IntentError((Problem("", f"an edit changes the tenancy only, not {', '.join(sorted(FABRIC))}"),), "edit")
        intent = compose(Stored(stored.fabric, KeyValue(keys.tenancy(), json.dumps(tenancy_doc).encode(), 0, 0, 0),
                                stored.chassis))
        rev = stored.tenancy.mod_revision if stored.tenancy else 0
        ok, _ = store.txn([Compare(keys.tenancy(), "mod", "==", rev)], [Put(keys.tenancy(), tenancy_to_json(intent))])
        if ok:
            return intent
    raise StoreError(f"the tenancy changed under {ATTEMPTS} edits in a row: try again")


def whole_doc(intent: Intent) -> dict:
    """What `tenet get` prints: the canonical document, both parts in one mapping."""
    return join(*split(intent_to_doc(intent)))
def set_vm(store: Store, name: str, **fields: str | None) -> Intent:
    """Set a VM's or virtual router's `host`, `state` or `migrating_to` in the intent (None
    removes the field: its default), validated and written with a compare-and-swap."""
    unknown = set(fields) - {"host", "state", "migrating_to"}
    if unknown:
        raise ValueError(f"set_vm: no field {', '.join(sorted(unknown))}")

    def change(doc: dict) -> None:
        section = next((s for s in ("vms", "vrouters") if name in (doc.get(s) or {})), None)
        if section is None:
            raise IntentError((Problem(f"vms.{name}", "no VM or virtual router of that name"),), "edit")
        spec = doc[section][name]
        for key, value in fields.items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value

    return edit_intent(store, change)


def set_link(store: Store, name: str, guarantee: str | None = None, limit: str | None = None) -> Intent:
    """Re-rate a virtual link: "0" removes its guarantee or limit, None leaves it as it is."""

    def change(doc: dict) -> None:
        link = doc.get("vlinks", {}).get(name)
        if link is None:
            raise IntentError((Problem(f"vlinks.{name}", "no such virtual link"),), "edit")
        for key, value in (("guarantee", guarantee), ("limit", limit)):
            if value in ("0", "none"):
                link.pop(key, None)
            elif value is not None:
                link[key] = value

    return edit_intent(store, change)
