"""The operator's intent in the store: read, and edited as a whole.

An edit is read-modify-write of the canonical document, validated in full by the loader and
written with a compare-and-swap on the key's revision: an invalid edit changes nothing, a
concurrent one makes us re-read and re-apply rather than lose it.
"""
from __future__ import annotations

from typing import Callable

from tenet.model.errors import IntentError, Problem
from tenet.model.load import load_intent
from tenet.model.tenancy import Intent
from tenet.store import keys
from tenet.store.base import Compare, KeyValue, Put, Store, StoreError
from tenet.store.records import intent_doc_from_json, intent_from_json, intent_to_json

ATTEMPTS = 5


def _stored(store: Store) -> KeyValue:
    kv = store.get(keys.intent())
    if kv is None:
        raise IntentError((Problem("", "the store holds no intent (is the lab up?)"),), "store")
    return kv


def read_intent(store: Store) -> Intent:
    return intent_from_json(_stored(store).value, "store")


def edit_intent(store: Store, change: Callable[[dict], None]) -> Intent:
    """Apply `change` to the stored document; return the new intent once it is written."""
    for _ in range(ATTEMPTS):
        kv = _stored(store)
        doc = intent_doc_from_json(kv.value)
        change(doc)
        intent = load_intent(doc, "edit")
        ok, _ = store.txn([Compare(keys.intent(), "mod", "==", kv.mod_revision)],
                          [Put(keys.intent(), intent_to_json(intent))])
        if ok:
            return intent
    raise StoreError(f"the intent changed under {ATTEMPTS} edits in a row: try again")


def set_vrouter(store: Store, name: str, state: str | None = None, host: str | None = None) -> Intent:
    """Pause, resume, stop, start (state) or move (host) a virtual router in the intent."""

    def change(doc: dict) -> None:
        vr = doc.get("vrouters", {}).get(name)
        if vr is None:
            raise IntentError((Problem(f"vrouters.{name}", "no such virtual router"),), "edit")
        if state is not None:
            vr["state"] = state
        if host is not None:
            vr["host"] = host

    return edit_intent(store, change)


def set_link(store: Store, name: str, guarantee: str | None = None, limit: str | None = None) -> Intent:
    """Re-rate a virtual link: "0" removes its guarantee or limit, None leaves it as it is."""

    def change(doc: dict) -> None:
        link = doc.get("vlinks", {}).get(name)
        if link is None:
            raise IntentError((Problem(f"vlinks.{name}", "no such virtual link"),), "edit")
        for key, value in (("guarantee", guarantee), ("limit", limit)):
            if value in ("0", "none"):
                link.pop(key, None)
            elif value is not None:
                link[key] = value

    return edit_intent(store, change)
