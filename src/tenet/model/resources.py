"""The tenancy as an operator addresses it: kinds of named resources (networks, VMs, users,
virtual routers and links, tenants), each a section of the canonical document.

An edit replaces one resource's section entry and hands the whole document back to the loader,
so a resource written through the API is validated exactly as the same entry in a file given to
`tenet apply` (the same problems, the same paths). Pure: documents in, documents out.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from enum import Enum
from typing import Any

SECRET = "password"  # never shown: a NIC's or a user's credentials are write-only


class Kind(str, Enum):
    TENANTS = "tenants"
    NETWORKS = "networks"
    VMS = "vms"
    USERS = "users"
    VROUTERS = "vrouters"
    VLINKS = "vlinks"

    @property
    def singular(self) -> str:
        return {"tenants": "tenant", "networks": "network", "vms": "VM", "users": "user",
                "vrouters": "virtual router", "vlinks": "virtual link"}[self.value]


def items(doc: dict, kind: Kind) -> Mapping[str, dict]:
    """name -> spec for one kind (a tenant's spec is empty: it is a name). The document's own
    mapping, not a copy: read it, never change it (`with_item` makes the changed copy)."""
    if kind is Kind.TENANTS:
        return {t: {} for t in doc.get("tenants") or []}
    if kind is Kind.USERS:
        return (doc.get("aaa") or {}).get("users") or {}
    return doc.get(kind.value) or {}


def path(kind: Kind, name: str) -> str:
    """Where the loader names a problem of this resource."""
    return {Kind.USERS: f"aaa.users.{name}", Kind.TENANTS: "tenants"}.get(kind, f"{kind.value}.{name}")


def with_item(doc: dict, kind: Kind, name: str, spec: dict | None) -> dict:
    """A copy of `doc` with the resource set to `spec` (None: removed)."""
    out = copy.deepcopy(doc)
    if kind is Kind.TENANTS:
        tenants = [t for t in out.get("tenants") or [] if t != name]
        out["tenants"] = tenants + [name] if spec is not None else tenants
        return out
    section = out.setdefault("aaa", {}).setdefault("users", {}) if kind is Kind.USERS else out.setdefault(kind.value, {})
    if spec is None:
        section.pop(name, None)
    else:
        section[name] = copy.deepcopy(spec)
    if kind is Kind.USERS and not section:
        out.pop("aaa")  # no users: no RADIUS section at all, as the canonical document has it
    elif not section:
        out.pop(kind.value)
    return out


def tenant_of(doc: dict, kind: Kind, name: str, spec: dict | None = None) -> str | None:
    """The tenant a resource belongs to (`spec` if given, else the document's entry); None when
    it has none a tenant could own (a VM with no NIC, or NICs on several tenants' VNs)."""
    if kind is Kind.TENANTS:
        return name
    spec = items(doc, kind).get(name) if spec is None else spec
    if not isinstance(spec, dict):
        return None
    networks = items(doc, Kind.NETWORKS)
    vrouters = items(doc, Kind.VROUTERS)
    if kind in (Kind.NETWORKS, Kind.VROUTERS):
        return str(spec.get("tenant", "default"))
    if kind is Kind.USERS:
        return _tenant(networks.get(str(spec.get("network"))))
    if kind is Kind.VLINKS:
        owners = {_tenant(vrouters.get(str(vr))) for vr in spec.get("between") or []}
        return owners.pop() if len(owners) == 1 else None
    nics = spec.get("nics") or ([{k: spec[k] for k in ("network",) if k in spec}] if "network" in spec else [])
    owners = {_tenant(networks.get(str(n.get("network")))) if isinstance(n, dict) else None for n in nics}
    return owners.pop() if len(owners) == 1 else None


def _tenant(spec: Any) -> str | None:
    return str(spec.get("tenant", "default")) if isinstance(spec, dict) else None


def shown(spec: Any) -> Any:
    """A spec as a reader gets it: every credential left out, at any depth."""
    if isinstance(spec, dict):
        return {k: shown(v) for k, v in spec.items() if k != SECRET}
    if isinstance(spec, list):
        return [shown(v) for v in spec]
    return spec


def keeping_secrets(old: Any, new: Any) -> Any:
    """`new` with each credential it leaves out taken from `old` (the same place in it, for
    the same identity): a client that read a resource (credentials not shown) and writes it
    back loses none."""
    if isinstance(new, dict) and isinstance(old, dict):
        out = {k: keeping_secrets(old.get(k), v) for k, v in new.items()}
        if SECRET in old and SECRET not in new and old.get("identity") == new.get("identity"):
            out[SECRET] = old[SECRET]
        return out
    if isinstance(new, list) and isinstance(old, list):
        return [keeping_secrets(old[i] if i < len(old) else None, v) for i, v in enumerate(new)]
    return new
