"""One resource of the tenancy read, written or removed, as its tenant or as the admin.

The edit is made to the whole canonical document and planned like `tenet apply` (so the loader
judges it, with the same problems at the same paths), then written by the site with a
compare-and-swap: a change that raced another is planned again from what is stored now.
A tenant sees only its own resources: another's is "not found", never "forbidden".
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from tenet.model.errors import IntentError, Problem
from tenet.model.resources import Kind, items, keeping_secrets, path, shown, tenant_of, with_item
from tenet.model.tenancy import Intent
from tenet.site import Site
from tenet.store.apply import ApplyConflict
from tenet.store.base import StoreError
from tenet.store.intent import read_tenancy

ATTEMPTS = 5


class NotFound(LookupError):
    pass


class Forbidden(PermissionError):
    pass


class Contended(StoreError):
    """Other writes kept landing between this edit's read and its write."""


class Unseen(IntentError):
    """A tenant's resource names what the tenant has not got (said as for a name that does
    not exist: these problems name nothing of anyone else's)."""


@dataclass(frozen=True)
class Edited:
    kind: Kind
    name: str
    revision: int | None  # None: the document already said so
    intent: Intent
    created: bool


def tenancy_doc(site: Site) -> tuple[dict, int]:
    """The stored tenancy as the canonical document's tenancy part, and its mod revision."""
    store = site.store()
    try:
        return read_tenancy(store)
    finally:
        store.close()


def visible(doc: dict, kind: Kind, tenant: str | None) -> dict[str, dict]:
    """The resources of a kind a caller may see (tenant None: the admin sees all), as shown."""
    return {n: shown(s) for n, s in items(doc, kind).items() if tenant is None or tenant_of(doc, kind, n) == tenant}


def get(site: Site, kind: Kind, name: str, tenant: str | None) -> dict:
    doc, _ = tenancy_doc(site)
    found = visible(doc, kind, tenant).get(name)
    if found is None:
        raise NotFound(f"no {kind.singular} named {name!r}")
    return found


def edit(site: Site, kind: Kind, name: str, spec: dict | None, tenant: str | None, timeout: float = 60.0) -> Edited:
    """Set (spec) or remove (None) one resource; IntentError, NotFound or Forbidden leave the
    store as it was."""
    if tenant is not None and kind is Kind.TENANTS:
        raise Forbidden("tenants are created and removed by the admin")
    for _ in range(ATTEMPTS):
        doc, revision = tenancy_doc(site)
        old = items(doc, kind).get(name)
        if old is not None and tenant is not None and tenant_of(doc, kind, name) != tenant:
            old = None  # another tenant's: as if it did not exist
            if spec is not None:
                raise IntentError((Problem(path(kind, name), "the name is taken"),), "edit")
        if old is None and spec is None:
            raise NotFound(f"no {kind.singular} named {name!r}")
        if spec is not None:
            spec = keeping_secrets(old, spec) if old is not None else dict(spec)
            if kind in (Kind.NETWORKS, Kind.VROUTERS) and "tenant" not in spec and tenant is not None:
                spec["tenant"] = tenant
            if tenant is not None:
                _owned(doc, kind, name, spec, tenant)
        plan = site.plan(with_item(doc, kind, name, spec), f"{kind.value}/{name}")
        if plan.revision != revision:
            continue  # the tenancy changed between the two reads: edit what is there now
        try:
            written = site.write(plan, timeout)
        except ApplyConflict:
            continue
        return Edited(kind, name, written, plan.after, old is None and spec is not None)
    raise Contended(f"the tenancy changed under {ATTEMPTS} edits in a row: try again")


def _owned(doc: dict, kind: Kind, name: str, spec: dict, tenant: str) -> None:
    """A tenant's resource may name only its own tenant and its own VNs and routers."""
    if kind in (Kind.NETWORKS, Kind.VROUTERS) and spec.get("tenant") != tenant:
        raise Forbidden(f"a token of tenant {tenant!r} writes that tenant's resources only")
    mine = {n for n in items(doc, Kind.NETWORKS) if tenant_of(doc, Kind.NETWORKS, n) == tenant}
    routers = {n for n in items(doc, Kind.VROUTERS) if tenant_of(doc, Kind.VROUTERS, n) == tenant}
    p = path(kind, name)
    problems = []
    nics = spec.get("nics") or []
    for i, nic in enumerate(nics if isinstance(nics, list) else []):
        if isinstance(nic, dict) and nic.get("network") not in mine:
            problems.append(Problem(f"{p}.nics[{i}].network", f"no network named {nic.get('network')!r}"))
    if kind is Kind.USERS and spec.get("network") not in mine:
        problems.append(Problem(f"{p}.network", f"no network named {spec.get('network')!r}"))
    if kind is Kind.NETWORKS and spec.get("over") and spec["over"] not in mine:
        problems.append(Problem(f"{p}.over", f"no network named {spec['over']!r}"))
    if kind is Kind.VLINKS:
        for i, vr in enumerate(spec.get("between") or []):
            if vr not in routers:
                problems.append(Problem(f"{p}.between[{i}]", f"no virtual router named {vr!r}"))
    if problems:
        raise Unseen(tuple(problems), "edit")


def redacted(error: IntentError, doc: dict, tenant: str | None) -> IntentError:
    """The loader's problems as a tenant may read them: another tenant's names left out (a
    VN-ID already taken says so, not by whom or by what)."""
    if tenant is None or isinstance(error, Unseen):
        return error
    foreign = {n for kind in (Kind.NETWORKS, Kind.VMS, Kind.USERS, Kind.VROUTERS, Kind.VLINKS)
               for n in items(doc, kind) if tenant_of(doc, kind, n) != tenant}
    foreign |= {t for t in items(doc, Kind.TENANTS) if t != tenant}

    def clean(text: str) -> str:
        for n in sorted(foreign, key=len, reverse=True):
            text = re.sub(rf"'?(?<![\w.-]){re.escape(n)}(?![\w-])'?", "(hidden)", text)
        return text

    return IntentError(tuple(Problem(p.path, clean(p.message)) for p in error.problems), "edit")
