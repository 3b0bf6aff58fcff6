"""/v1/hosts, /v1/endpoints, /v1/tables, /v1/controllers: what the system is doing, read-only.

Hosts, tables and controllers are the fabric's (the admin's); a tenant sees its own TESs."""
from __future__ import annotations

import json
from dataclasses import replace
from typing import Optional

from fastapi import APIRouter, Depends, Query

from tenet.api.deps import admin, caller, site_of
from tenet.api.auth import Caller
from tenet.compute.present import reverse_rows, rows
from tenet.compute.tables import to_json
from tenet.edits import NotFound
from tenet.model.resources import Kind, items, tenant_of
from tenet.site import Site
from tenet.store import inventory, published
from tenet.store.endpoints import attached
from tenet.store.intent import read_tenancy

router = APIRouter()


@router.get("/hosts", tags=["hosts"], summary="every host: registered or declared, up or down, its generations")
def hosts(_: Caller = Depends(admin), site: Site = Depends(site_of)) -> list[dict]:
    store = site.store()
    try:
        return [v.to_dict() for v in inventory.hosts(store)]
    finally:
        store.close()


@router.get("/endpoints", tags=["endpoints"], summary="attached TESs: where, as whom, with what RADIUS granted")
def endpoints(who: Caller = Depends(caller), site: Site = Depends(site_of)) -> list[dict]:
    store = site.store()
    try:
        reports = attached(store)
        doc = read_tenancy(store)[0] if who.tenant is not None else {}
    finally:
        store.close()
    if who.tenant is not None:
        mine = {n for n in items(doc, Kind.NETWORKS) if tenant_of(doc, Kind.NETWORKS, n) == who.tenant}
        reports = [r for r in reports if r.vn in mine]
    return [r.to_dict() for r in sorted(reports, key=lambda r: (r.vn, r.host, r.mac))]


@router.get("/tables/{host}", tags=["tables"], summary="a host's addressing mode tables (the seed's three columns)",
            responses={404: {"description": "no tables published for that host (or not that VN)"}})
def tables(host: str, vn: Optional[str] = Query(None, description="only this VN"), _: Caller = Depends(admin),
           site: Site = Depends(site_of)) -> dict:
    store = site.store()
    try:
        ht = published.read(store, host)
    finally:
        store.close()
    if ht is None:
        raise NotFound(f"no tables published for host {host!r}")
    vns = [t for t in ht.vns if vn is None or t.vn == vn]
    if vn is not None and not vns:
        raise NotFound(f"host {host} does not implement VN {vn!r}")
    return {"host": host, "generation": ht.generation,
            "vns": [{"vn": t.vn, "vnid": t.vnid,
                     "rows": [{"destination": d, "function": f, "address": a} for d, f, a in rows(t)],
                     "reverse": [{"arrival": a, "delivered_as": d} for a, d in reverse_rows(t)],
                     "routes": [{"prefix": r.prefix, "function": r.function, "address": r.address, "port": r.port}
                                for r in t.routes]} for t in vns],
            "tables": json.loads(to_json(replace(ht, vns=tuple(vns))))}


@router.get("/controllers", tags=["hosts"], summary="which controller replica leads, and how far it published")
def controllers(_: Caller = Depends(admin), site: Site = Depends(site_of)) -> dict:
    from tenet.controller.status import status

    store = site.store()
    try:
        return status(store).to_dict()
    finally:
        store.close()


def _snapshot(site: Site):
    from tenet.store.snapshot import read_snapshot

    store = site.store()
    try:
        return read_snapshot(store)
    finally:
        store.close()


@router.get("/trace", tags=["tables"], summary="a frame's path, from the published tables alone (as ovn-trace)",
            responses={404: {"description": "no such VM, NIC or destination"}})
def trace_(source: str = Query(..., alias="from", description="the VM (or virtual router) it leaves"),
           to: str = Query(..., description="a MAC, an IP or ff:ff:ff:ff:ff:ff"),
           nic: Optional[int] = Query(None, ge=0, description="which of its NICs (default: the first)"),
           _: Caller = Depends(admin), site: Site = Depends(site_of)) -> dict:
    from tenet.compute.trace import TraceError, trace

    try:
        return trace(_snapshot(site), source, to, nic).to_dict()
    except TraceError as e:
        raise NotFound(str(e)) from None


@router.get("/verify", tags=["tables"], summary="isolation and reachability over every host's tables")
def verify_(_: Caller = Depends(admin), site: Site = Depends(site_of)) -> dict:
    from tenet.compute.verify import verify

    snap = _snapshot(site)
    findings = verify(snap)
    return {"ok": not findings, "hosts": len(snap.tables), "findings": [f.to_dict() for f in findings]}
