"""Waiting until a change is live: the controller has published every input written before the
wait began (its Observed record, controller/observed.py), and then every agent has applied the
tables published for its host. Checking the agents alone was not enough: right after an edit
they still report the old tables as applied, and a waiter could return before the controller
had even read the edit (a first ping lost in CI)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

from tenet.lab.netns import LabError
from tenet.store.applied import NotApplied, wait_applied
from tenet.store.open import open_store


def wait_converged(store_url: str, hosts: Sequence[str], timeout: float = 60.0, *, admission: bool = False,
                   check: Callable[[], None] = lambda: None) -> None:
    """Return when the controller has published every input written so far and each of
    `hosts` has applied its tables (and, with `admission`, all its admission processes serve).
    `check` runs on every look and raises to give up early (a lab process died, say)."""
    store = open_store(store_url)
    try:
        wait_applied(store, store.revision(), hosts, timeout, admission=admission, check=check)
    except NotApplied as e:
        raise LabError(str(e)) from None
    finally:
        store.close()
