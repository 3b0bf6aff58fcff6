"""Has a change reached the hosts? `ovn-nbctl --wait=hv` for tenet, read from the store alone.

A change written at revision R is applied when the controller has published every input up to
R (its Observed record, controller/observed.py) and then every host with published tables has
applied the generation published for it. Asking the agents alone is not enough: right after an
edit they still report the old tables as applied."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from tenet.controller.observed import reflects, through
from tenet.store import keys, published
from tenet.store.base import Store, StoreError
from tenet.store.intent import read_intent
from tenet.store.records import AdmissionReady, AgentStatus, Leader

POLL = 0.02


class NotApplied(StoreError):
    """The wait ran out: the message says who has not caught up."""


def _nothing() -> None:
    pass


def wait_applied(store: Store, revision: int, hosts: Sequence[str] | None = None, timeout: float = 30.0, *,
                 admission: bool = False, check: Callable[[], None] = _nothing) -> tuple[str, ...]:
    """Return the hosts that applied everything written up to `revision` (`hosts`, or every
    host of the fabric). With `admission`, each host's admission processes must all
    serve too. `check` runs on every look and raises to give up early."""
    deadline = time.monotonic() + timeout
    while not reflects(store, revision):
        check()
        if time.monotonic() > deadline:
            raise NotApplied(f"the controller has not published revision {revision} after {timeout:g}s "
                             f"({_whereabouts(store)})")
        time.sleep(POLL)
    if hosts is None:
        hosts = [h.name for h in read_intent(store).fabric.hosts]  # a host that is down is named, not skipped
    while True:
        pending = [h for h in hosts if not converged(store, h, admission)]
        check()
        if not pending:
            return tuple(hosts)
        if time.monotonic() > deadline:
            raise NotApplied(f"not applied after {timeout:g}s by {', '.join(pending)}")
        time.sleep(POLL)


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
