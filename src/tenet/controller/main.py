"""The controller process: replicas elect a leader (leadership.py); the leader watches intent
and endpoints and republishes on every change, each write fenced by its term; the others
follow and take over when its lease lapses."""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable

from tenet.controller.fence import Deposed
from tenet.controller.hold import HOLD, carried_over
from tenet.controller.leadership import KEEPALIVE, Candidate, Term
from tenet.controller.liveness import GRACE, Liveness
from tenet.controller.metrics import ControllerMetrics
from tenet.controller.observed import Witness
from tenet.controller.publish import Publication
from tenet.exposition import serve_option
from tenet.pace import Pacer
from tenet.store import keys
from tenet.store.base import Store, StoreError, follow
from tenet.store.open import open_store
from tenet.model.errors import IntentError
from tenet.stopping import stop_on_signals

log = logging.getLogger("tenet.controller")
PACE = 0.02  # under endpoint churn, at most one recompute per 20 ms (each sees all changes so far)
BURST = 0.1  # quiet time banks up to this much pacing: changes one at a time never wait
RETRY = 1.0  # after the store failed us: a pause before campaigning again


def lead(store: Store, term: Term, leading: Callable[[], bool], stopping: threading.Event,
         resync: float = 10.0, hold: float = HOLD, grace: float = GRACE, *,
         metrics: ControllerMetrics | None = None) -> str:
    """Publish on every change while this replica leads; returns why it stopped (Deposed when a
    fenced write was refused). Starts from what the predecessor published: generations go on
    from the stored tables, and unchanged content is not written again. Its inputs are read
    once and then kept current by the watch (inputs.py); every `resync` a pass checks every
    host's tables against what is stored."""
    p = Publication(store, None, Liveness(grace), term.fence)  # a new leader starts every host's clock afresh
    try:
        intent = p.inputs.intent()
    except IntentError:  # the first pass says why
        intent = None
    if intent is not None:  # the stored heads, read once: for the hold and for the generations
        p.publisher.load(store, [h.name for h in intent.fabric.hosts])
    p.hold = held = carried_over(hold, p.publisher.heads.values())
    rev = p.revision + 1
    witness = Witness(term.leader.name, term.fence)
    pacer = Pacer(PACE, burst=BURST)
    full_due = 0.0
    metrics = metrics or ControllerMetrics()
    while not stopping.is_set():
        if not leading():
            return "lease not renewed within its TTL"
        pacer.pace()
        current = False  # the tables reflect every input read by this pass
        try:
            read_at = p.revision  # what the pass computes from: what Observed may promise
            now = time.monotonic()
            written = p.run(now, everything=now >= full_due)
            metrics.pass_done(time.monotonic() - now, written)
            if now >= full_due:
                full_due = now + resync  # level-triggered: every host checked now and then regardless
            if written:
                log.info("published %d hosts: %s", len(written),
                         {h: t.generation for h, t in sorted(written.items())[:20]})
            witness.saw(store, read_at)
            current = True
        except Deposed:
            raise
        except StoreError:
            raise
        except Exception as e:  # a bad intent must not kill the controller; the last tables stay
            metrics.compute_failures.inc()
            log.exception("recompute failed, keeping published tables: %s", e)
            full_due = 0.0
        pacer.done()
        due = min(full_due, held.next_due() or full_due, p.liveness.next_due() or full_due)  # a held VN instance goes, a host is down
        while not stopping.is_set():  # at least one look at the watch per pass: the copy must not go stale
            if not leading():
                return "lease not renewed within its TTL"
            rev, events = follow(store, keys.ROOT, rev, timeout=max(0.0, min(due - time.monotonic(), KEEPALIVE)))
            if p.feed(events):
                break
            if events and current:  # others' writes, none an input: the tables reflect them too
                witness.saw(store, rev - 1)
            if time.monotonic() >= due:
                break
    return "stopping"


def run(store_url: str, name: str, resync: float = 10.0, hold: float = HOLD, grace: float = GRACE,
        metrics: ControllerMetrics | None = None) -> None:
    metrics = metrics or ControllerMetrics()
    stopping = stop_on_signals()
    candidate = Candidate(store_url, name)
    store = open_store(store_url)
    try:
        while not stopping.is_set():
            try:
                term = candidate.elect(stopping)
                if term is None:
                    break
                metrics.leader.set(1)
                why = lead(store, term, candidate.leading, stopping, resync, hold, grace, metrics=metrics)
            except Deposed as e:
                why = str(e)
            except StoreError as e:  # the store is away: agents keep their tables; try again later
                log.error("%s: store failed: %s", name, e)
                why = f"store failed: {e}"
                stopping.wait(RETRY)
            metrics.leader.set(0)
            candidate.step_down(why)  # on SIGTERM too: the lease is revoked, a successor leads at once
    finally:
        candidate.step_down("stopping")
        candidate.close()
        store.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="tenet-controller")
    p.add_argument("--store", required=True)
    p.add_argument("--name", default=f"{socket.gethostname()}:{os.getpid()}",
                   help="this replica's name in the leader record (default: hostname:pid)")
    p.add_argument("--instance-hold", type=float, default=HOLD, metavar="SECONDS",
                   help="keep a VN instance on a host this long after its last endpoint leaves (0: remove at once)")
    p.add_argument("--down-grace", type=float, default=GRACE, metavar="SECONDS",
                   help="peers keep sending to a registered host this long after its lease lapsed (docs/agent.md)")
    p.add_argument("--metrics", metavar="ADDR:PORT", default="",
                   help="serve Prometheus metrics at http://ADDR:PORT/metrics (docs/metrics.md)")
    a = p.parse_args(argv)
    if a.instance_hold < 0 or a.down_grace < 0:
        p.error("--instance-hold and --down-grace must be >= 0")
    if not a.name.strip():
        p.error("--name must not be empty")
    metrics = ControllerMetrics()
    serve_option(p, metrics.registry, a.metrics)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run(a.store, a.name, hold=a.instance_hold, grace=a.down_grace, metrics=metrics)


if __name__ == "__main__":
    main()
