"""Waiting until a change is live: the controller has published every input written before the
wait began (its Observed record, controller/observed.py), and then every agent has applied the
tables published for its host. Checking the agents alone was not enough: right after an edit
they still report the old tables as applied, and a waiter could return before the controller
had even read the edit (a first ping lost in CI)."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from tenet.controller.observed import reflects, through
from tenet.lab.netns import LabError
from tenet.store import keys, published
from tenet.store.base import Store
from tenet.store.open import open_store
from tenet.store.records import AdmissionReady, AgentStatus, Leader

POLL = 0.02


def _nothing() -> None:
    pass


def wait_converged(store_url: str, hosts: Sequence[str], timeout: float = 60.0, *, admission: bool = False,
                   check: Callable[[], None] = _nothing) -> None:
    """Return when the controller has published every input written so far and each of
    `hosts` has applied its tables (and, with `admission`, all its admission processes serve).
    `check` runs on every look and raises to give up early (a lab process died, say)."""
    store = open_store(store_url)
    deadline = time.monotonic() + timeout
    try:
        target = store.revision()
        while not reflects(store, target):
            check()
            if time.monotonic() > deadline:
                raise LabError(f"the controller has not published revision {target} after {timeout:.0f}s "
                               f"({_whereabouts(store)})")
            time.sleep(POLL)
        while True:
            pending = [h for h in hosts if not converged(store, h, admission)]
            check()
            if not pending:
                return
            if time.monotonic() > deadline:
                raise LabError(f"agents not converged after {timeout:.0f}s: {', '.join(pending)}")
            time.sleep(POLL)
    finally:
        store.close()


def converged(store: Store, host: str, admission: bool = False) -> bool:
    t, s = published.read(store, host), store.get(keys.status(host))
    if t is None or s is None:
        return False
    if admission and not _admission_ready(store, host):
        return False  # its admission processes do not all serve yet: a TES would miss its offer
    return AgentStatus.from_json(s.value).converged_on(t)


def _admission_ready(store: Store, host: str) -> bool:
    """Every shard of the host's admission has said it serves (each writes its own key)."""
    ready = [AdmissionReady.from_json(kv.value) for kv in store.range(keys.admission_prefix(host))]
    return bool(ready) and len(ready) >= ready[0].shards


def _whereabouts(store: Store) -> str:
    leader = store.get(keys.controller_leader())
    who = f"{Leader.from_json(leader.value).name} leads" if leader else "no controller leads"
    return f"{who}; published through revision {through(store.get(keys.controller_observed()))}"
