"""What every route depends on: the caller (by bearer token), the site, and the wait options."""
from __future__ import annotations

from typing import Optional

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tenet.api.auth import Caller
from tenet.api.schemas import Wait
from tenet.edits import Forbidden
from tenet.site import Site

bearer = HTTPBearer(auto_error=False, description="the admin's token or a tenant's (docs/api.md)")


class Unauthorized(Exception):
    pass


def caller(request: Request, cred: Optional[HTTPAuthorizationCredentials] = Depends(bearer)) -> Caller:
    if cred is None:
        raise Unauthorized("no bearer token")
    who = request.app.state.tokens().caller(cred.credentials)
    if who is None:
        raise Unauthorized("not a token of this API")
    return who


def admin(who: Caller = Depends(caller)) -> Caller:
    if not who.admin:
        raise Forbidden("the admin's only: the fabric is not a tenant's")
    return who


def site_of(request: Request) -> Site:
    return request.app.state.site


WAIT = Query(None, description="applied: return once every host applied the change (as ovn-nbctl --wait=hv)")
TIMEOUT = Query(30.0, gt=0, le=600, description="seconds to wait for wait=applied (504 after)")


def waited(site: Site, revision: int | None, wait: Optional[Wait], timeout: float) -> list[str] | None:
    """The hosts that applied `revision`, when asked to wait; NotApplied (504) when they did not in time."""
    return None if wait is None else list(site.wait_applied(revision, timeout))
