"""The live web view (docs/web.md): a page at `/` drawing the underlay and the overlay as a graph,
`/v1/graph` (the same graph as JSON), `/v1/events` (server-sent events: the graph again each
time the store changes it) and `/v1/rates` (virtual links' live rates, where they can be seen).

One watch of the whole store per API process rebuilds the admin's graph after each change
(changes that come together coalesced); each stream sends its caller's view of it when that
view changed. The page sends its token in the Authorization header, the stream included (it
reads the stream with fetch, not EventSource, which cannot send headers): a token never
travels in a URL, so never lands in a log.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from importlib import resources
from typing import AsyncIterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from tenet.api.deps import caller, site_of
from tenet.api.auth import Caller
from tenet.api.graph import Graph, build, for_tenant
from tenet.model.errors import IntentError
from tenet.site import Site
from tenet.store import inventory, keys
from tenet.store.base import StoreError, follow
from tenet.store.endpoints import attached
from tenet.store.intent import read_intent

log = logging.getLogger("tenet.api.web")
router = APIRouter()
COALESCE = 0.05  # seconds: changes this close together make one new graph
WATCH = 5.0  # seconds per store watch call (the thread's loop also notices a stop)
KEEPALIVE = 15.0  # seconds between comments on an idle stream (proxies drop silent ones)
POLL = 0.05  # seconds between a stream's looks at the shared graph's version
STATIC = {"web.js": "text/javascript", "web.css": "text/css"}


def read_graph(site: Site) -> tuple[Graph, int]:
    """The admin's graph as the store holds it now, and the revision it was read at."""
    store = site.store()
    try:
        revision = store.revision()
        intent = read_intent(store)
        return build(intent, inventory.hosts(store), attached(store)), revision
    finally:
        store.close()


def view(graph: Graph, who: Caller) -> Graph:
    return graph if who.admin else for_tenant(graph, who.tenant or "")


class Live:
    """The admin's graph, kept current by one thread watching the store; `version` counts the
    times it changed (a change of the store that changes nothing drawn is not one)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.version = 0
        self.graph: Graph | None = None
        self.revision = 0
        self.error = ""
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="tenet-web-live", daemon=True)
                self._thread.start()

    def _refresh(self) -> int:
        """Rebuild; the revision to watch from next."""
        try:
            graph, revision = read_graph(self.site)
        except (IntentError, StoreError, ValueError) as e:  # keep showing the last good graph
            self.error = str(e)
            log.warning("web view: the graph could not be read: %s", e)
            return 0
        with self._lock:
            self.error = ""
            self.revision = revision
            if self.graph is None or graph.to_dict() != self.graph.to_dict():
                self.graph, self.version = graph, self.version + 1
        return revision + 1

    def _run(self) -> None:
        store = None
        rev = 0
        while True:
            try:
                if store is None:
                    store = self.site.store()
                if rev == 0:
                    rev = self._refresh()
                    if rev == 0:
                        time.sleep(1.0)
                        continue
                rev, events = follow(store, keys.ROOT, rev, WATCH)
                if events == []:
                    continue
                time.sleep(COALESCE)
                rev = self._refresh() or rev
            except Exception as e:  # the store away: look again in a second, from a fresh connection
                log.warning("web view: store watch failed: %s", e)
                if store is not None:
                    try:
                        store.close()
                    except Exception:
                        pass
                store, rev = None, 0
                time.sleep(1.0)


def live_of(request: Request) -> Live:
    state = request.app.state
    if getattr(state, "web_live", None) is None:
        state.web_live = Live(state.site)
    state.web_live.start()
    return state.web_live


@router.get("/", include_in_schema=False)
def page() -> HTMLResponse:
    return HTMLResponse(_asset("web.html"), headers={"Cache-Control": "no-cache"})


@router.get("/web/{name}", include_in_schema=False)
def asset(name: str) -> Response:
    if name not in STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(_asset(name), media_type=STATIC[name], headers={"Cache-Control": "no-cache"})


def _asset(name: str) -> str:
    return resources.files("tenet.api").joinpath("static", name).read_text()


@router.get("/v1/graph", tags=["web view"], summary="the underlay and the overlay as nodes and edges (a tenant: its overlay)")
def graph(who: Caller = Depends(caller), site: Site = Depends(site_of)) -> dict:
    g, revision = read_graph(site)
    return {"revision": revision, **view(g, who).to_dict()}


@router.get("/v1/events", include_in_schema=False)
async def events(request: Request, who: Caller = Depends(caller)) -> StreamingResponse:
    """text/event-stream: `event: graph` with the caller's view now, then again whenever it
    changes; a comment line every 15 s while nothing does. Ends when the token is withdrawn."""
    live = live_of(request)
    tokens = request.app.state.tokens
    token = request.headers.get("authorization", "").partition(" ")[2]

    async def stream() -> AsyncIterator[str]:
        seen, sent, quiet = -1, None, time.monotonic()
        while True:
            if live.version != seen and live.graph is not None:
                seen = live.version
                if tokens().caller(token) != who:
                    yield "event: bye\ndata: {\"detail\": \"the token was withdrawn\"}\n\n"
                    return
                mine = view(live.graph, who).to_dict()
                if mine != sent:
                    sent, quiet = mine, time.monotonic()
                    yield f"event: graph\ndata: {json.dumps({'revision': live.revision, **mine}, separators=(',', ':'))}\n\n"
            elif time.monotonic() - quiet > KEEPALIVE:
                quiet = time.monotonic()
                yield f": revision {live.revision}\n\n"
            await asyncio.sleep(POLL)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/v1/rates", tags=["web view"],
            summary="virtual links' live rates: bit/s in each link's HTB class, per host it leaves (a lab's only)")
def rates(request: Request, who: Caller = Depends(caller), site: Site = Depends(site_of)) -> dict:
    if site.lab is None:
        return {"available": False, "why": "a deployment's link counters are on its hosts (their metrics)", "links": {}}
    from tenet.lab.link_rates import LinkRates

    state = request.app.state
    if getattr(state, "web_rates", None) is None:
        state.web_rates = LinkRates(site.lab)
    store = site.store()
    try:
        intent = read_intent(store)
    finally:
        store.close()
    mine = {vl.name for vl in intent.vlinks if who.admin or vl.tenant == who.tenant}
    measured = state.web_rates.rates(intent)
    return {"available": True, "why": "", "links": {n: measured.get(n, {}) for n in sorted(mine)}}

