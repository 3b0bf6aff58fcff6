"""Operations: the VM and virtual-router lifecycle (pause, resume, stop, start, copy, migrate),
re-rating a virtual link, and ending a TES's session. The hypervisor (hypervisor/manager.py),
store/intent.py and store/endpoints.py do them, as for the CLI.

A lab is the hypervisor of its VMs. A deployment's hypervisors follow the intent: there a
power-state operation is an edit of the VM's `state`, and a live migration is theirs to run."""
from __future__ import annotations

from dataclasses import asdict
from enum import Enum
from typing import Optional

from fastapi import APIRouter, Depends, Path

from tenet import edits
from tenet.api import schemas
from tenet.api.deps import TIMEOUT, WAIT, admin, caller, site_of, waited
from tenet.api.auth import Caller
from tenet.model.resources import Kind, items, tenant_of
from tenet.site import Site
from tenet.store.endpoints import NotAttached, attached, revoke
from tenet.store.intent import read_tenancy, set_link, set_vm

router = APIRouter()
NAME = Path(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class Power(str, Enum):
    pause = "pause"
    resume = "resume"
    stop = "stop"
    start = "start"


STATE_AFTER = {Power.pause: "paused", Power.resume: "running", Power.stop: "stopped", Power.start: "running"}


def _written(site: Site, kind: Kind, name: str, wait: Optional[schemas.Wait], timeout: float) -> schemas.Written:
    store = site.store()
    try:
        revision = store.revision()
    finally:
        store.close()
    return schemas.Written(kind=kind.value, name=name, revision=revision, applied=waited(site, revision, wait, timeout))


for _kind in (Kind.VMS, Kind.VROUTERS):
    def _ops(kind: Kind) -> None:
        tag = kind.value

        @router.post(f"/{kind.value}/{{name}}/copy", tags=[tag], response_model=schemas.Written, status_code=201,
                     summary=f"clone a {kind.singular}: the same VNs, new MACs, the lowest free addresses")
        def copy(body: schemas.Copy, name: str = NAME, wait: Optional[schemas.Wait] = WAIT, timeout: float = TIMEOUT,
                 who: Caller = Depends(caller), site: Site = Depends(site_of)) -> schemas.Written:
            edits.get(site, kind, name, who.tenant)
            site.hypervisor().copy(name, body.name, body.host)
            return _written(site, kind, body.name, wait, timeout)

        @router.post(f"/{kind.value}/{{name}}/migrate", tags=[tag], summary=f"live-migrate a {kind.singular} (admin)")
        def migrate(body: schemas.Migrate, name: str = NAME, _: Caller = Depends(admin),
                    site: Site = Depends(site_of)) -> dict:
            edits.get(site, kind, name, None)
            return asdict(site.hypervisor().migrate(name, body.to, live=body.live))

        @router.post(f"/{kind.value}/{{name}}/{{action}}", tags=[tag], response_model=schemas.Written,
                     summary=f"pause, resume, stop or start a {kind.singular}",
                     responses={404: {"description": "no such resource (or another tenant's)"}})
        def power(action: Power, name: str = NAME, wait: Optional[schemas.Wait] = WAIT, timeout: float = TIMEOUT,
                  who: Caller = Depends(caller), site: Site = Depends(site_of)) -> schemas.Written:
            edits.get(site, kind, name, who.tenant)  # 404 unless the caller's
            if site.lab is None:
                store = site.store()
                try:
                    set_vm(store, name, state=STATE_AFTER[action])
                finally:
                    store.close()
            else:
                getattr(site.hypervisor(), action.value)(name)
            return _written(site, kind, name, wait, timeout)

    _ops(_kind)


@router.post("/vlinks/{name}/rate", tags=["vlinks"], response_model=schemas.Written,
             summary="re-rate a virtual link live (its HTB class changes in place)")
def rerate(body: schemas.Rerate, name: str = NAME, wait: Optional[schemas.Wait] = WAIT, timeout: float = TIMEOUT,
           who: Caller = Depends(caller), site: Site = Depends(site_of)) -> schemas.Written:
    edits.get(site, Kind.VLINKS, name, who.tenant)
    if body.guarantee is None and body.limit is None:
        from tenet.model.errors import IntentError, Problem

        raise IntentError((Problem(f"vlinks.{name}", "nothing to set: give guarantee and/or limit"),), "rate")
    store = site.store()
    try:
        set_link(store, name, None if body.guarantee is None else str(body.guarantee),
                 None if body.limit is None else str(body.limit))
    finally:
        store.close()
    return _written(site, Kind.VLINKS, name, wait, timeout)


@router.post("/endpoints/{mac}/detach", tags=["endpoints"], summary="end a TES's session now (TERMINATE, admin)",
             responses={404: {"description": "no attached TES of that MAC (that the token may see)"}})
def detach(body: schemas.Detach, mac: str = Path(..., pattern=r"^[0-9A-Fa-f]{2}([:-][0-9A-Fa-f]{2}){5}$"),
           who: Caller = Depends(caller), site: Site = Depends(site_of)) -> dict:
    mac = mac.lower().replace("-", ":")
    store = site.store()
    try:
        vns = None  # the admin's: the MAC's sessions in every VN
        if who.tenant is not None:  # a tenant's: only its own VNs' (tenants reuse MACs)
            doc, _ = read_tenancy(store)
            vns = {vn for vn in items(doc, Kind.NETWORKS) if tenant_of(doc, Kind.NETWORKS, vn) == who.tenant}
            if not any(r.mac == mac and r.vn in vns for r in attached(store)):
                raise NotAttached(f"no attached TES has MAC {mac}")
        return {"mac": mac, "asked": list(revoke(store, mac, body.why, vns))}
    finally:
        store.close()
