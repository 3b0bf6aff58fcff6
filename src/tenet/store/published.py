"""A host's published tables as the store holds them, read back whole.

Every reader of a host's tables (its agent and admission, the lab, the CLI, benchmarks) goes
through here, so the layout under the host's tables key can change in one place. Watch
`prefix(host)` to hear of any change to them.
"""
from __future__ import annotations

from tenet.store import keys
from tenet.store.base import Store
from tenet.store.records import HostTables


def prefix(host: str) -> str:
    """Every key of the host's tables starts with this (watch it)."""
    return keys.tables(host)


def read(store: Store, host: str) -> HostTables | None:
    """The host's tables, or None before the controller first published them. A malformed
    value raises ValueError naming the field (records.TablesError)."""
    kv = store.get(keys.tables(host))
    return HostTables.from_json(kv.value) if kv else None
