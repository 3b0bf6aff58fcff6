"""The REST API (`tenet api`): the tenancy's resources, the hosts and what they applied, attached
TESs, tables, and the operations of the VM lifecycle — all through the same functions as the CLI
(site.py, edits.py, store/), none of its own. OpenAPI 3 at /openapi.json, a docs page at /docs.
"""
from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tenet.api import operations, resources, views, web
from tenet.api.auth import Tokens
from tenet.api.deps import Unauthorized
from tenet.api.schemas import Problems
from tenet.edits import Contended, Forbidden, NotFound
from tenet.hypervisor.errors import HypervisorError
from tenet.model.errors import IntentError
from tenet.site import Site, SiteError
from tenet.store.applied import NotApplied
from tenet.store.apply import ApplyConflict
from tenet.store.base import StoreError
from tenet.store.endpoints import NotAttached


def create_app(site: Site, tokens: Callable[[], Tokens]) -> FastAPI:
    app = FastAPI(title="tenet", version="1", description="Tenant virtual networks: intent, state and operations. "
                  "Every request carries `Authorization: Bearer TOKEN` (docs/api.md).",
                  responses={401: {"description": "no token, or not a token of this API"},
                             422: {"model": Problems, "description": "the change is invalid; nothing was written"}})
    app.state.site = site
    app.state.tokens = tokens

    for exc, status in ((NotFound, 404), (NotAttached, 404), (Forbidden, 403), (ApplyConflict, 409), (Contended, 409),
                        (HypervisorError, 409), (SiteError, 409), (NotApplied, 504), (StoreError, 503)):
        app.add_exception_handler(exc, _plain(status))
    app.add_exception_handler(IntentError, _problems)
    app.add_exception_handler(Unauthorized, _plain(401))
    for r in (resources.router, views.router, operations.router):
        app.include_router(r, prefix="/v1")
    app.include_router(web.router)
    return app


def _plain(status: int):
    def handler(_: Request, e: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse({"detail": str(e) or type(e).__name__}, status_code=status, headers=headers)
    return handler


def _problems(_: Request, e: IntentError) -> JSONResponse:
    return JSONResponse({"detail": f"{len(e.problems)} problem(s)",
                         "problems": [{"path": p.path, "message": p.message} for p in e.problems]}, status_code=422)
