"""/v1/{tenants,networks,vms,users,vrouters,vlinks}: list, read, create or replace, remove.

A PUT carries the resource as the document writes it (docs/topology.md); credentials are
write-only (never returned; a PUT without one keeps the stored one).
"""

from typing import Optional

from fastapi import APIRouter, Depends, Path, Response

from tenet import edits
from tenet.api import schemas
from tenet.api.deps import TIMEOUT, WAIT, caller, site_of, waited
from tenet.api.auth import Caller
from tenet.model.errors import IntentError
from tenet.model.resources import Kind
from tenet.site import Site

router = APIRouter()
NAME = Path(..., pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$", description="the resource's name")
BODY = {Kind.TENANTS: schemas.Tenant, Kind.NETWORKS: schemas.Network, Kind.VMS: schemas.Vm,
        Kind.USERS: schemas.User, Kind.VROUTERS: schemas.VRouter, Kind.VLINKS: schemas.VLink}
NOT_FOUND = {404: {"description": "no such resource (or another tenant's)"}}


def _routes(kind: Kind) -> None:
    body_model = BODY[kind]
    tag = kind.value

    @router.get(f"/{kind.value}", tags=[tag], summary=f"every {kind.singular} the token may see")
    def list_(who: Caller = Depends(caller), site: Site = Depends(site_of)) -> dict[str, dict]:
        doc, _ = edits.tenancy_doc(site)
        return edits.visible(doc, kind, who.tenant)

    @router.get(f"/{kind.value}/{{name}}", tags=[tag], summary=f"one {kind.singular}", responses=NOT_FOUND)
    def get(name: str = NAME, who: Caller = Depends(caller), site: Site = Depends(site_of)) -> dict:
        return edits.get(site, kind, name, who.tenant)

    @router.put(f"/{kind.value}/{{name}}", tags=[tag], summary=f"create or replace a {kind.singular}",
                responses={201: {"description": "created"}, 403: {"description": "not the token's tenant"}},
                response_model=schemas.Written)
    def put(body: body_model, response: Response, name: str = NAME, wait: Optional[schemas.Wait] = WAIT,  # type: ignore[valid-type]
            timeout: float = TIMEOUT, who: Caller = Depends(caller), site: Site = Depends(site_of)) -> schemas.Written:
        done = _edit(site, kind, name, body.doc(), who)
        response.status_code = 201 if done.created else 200
        return schemas.Written(kind=kind.value, name=name, revision=done.revision,
                               applied=waited(site, done.revision, wait, timeout))

    @router.delete(f"/{kind.value}/{{name}}", tags=[tag], summary=f"remove a {kind.singular}", responses=NOT_FOUND,
                   response_model=schemas.Written)
    def delete(name: str = NAME, wait: Optional[schemas.Wait] = WAIT, timeout: float = TIMEOUT,
               who: Caller = Depends(caller), site: Site = Depends(site_of)) -> schemas.Written:
        done = _edit(site, kind, name, None, who)
        return schemas.Written(kind=kind.value, name=name, revision=done.revision,
                               applied=waited(site, done.revision, wait, timeout))


def _edit(site: Site, kind: Kind, name: str, spec: dict | None, who: Caller) -> edits.Edited:
    try:
        return edits.edit(site, kind, name, spec, who.tenant)
    except IntentError as e:
        doc, _ = edits.tenancy_doc(site)
        raise edits.redacted(e, doc, who.tenant) from None


for _kind in Kind:
    _routes(_kind)
