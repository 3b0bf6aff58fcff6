"""Placeholder until the incremental engine lands: a full recompute, everything changed."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import Endpoint
from tenet.compute.extmac import Key
from tenet.compute.tables import HostTables
from tenet.model.tenancy import Intent


@dataclass(frozen=True)
class Changed:
    hosts: frozenset[str]
    instances: frozenset[tuple[str, str]]
    removed_hosts: frozenset[str]


class Tables:
    def __init__(self) -> None:
        self.tables: dict[str, HostTables] = {}

    def update(self, intent: Intent, members: Mapping[str, tuple[Endpoint, ...]], extmacs: Mapping[Key, str],
               held: frozenset[tuple[str, str]]) -> Changed:
        eps = tuple(ep for vn in members for ep in members[vn])
        self.tables = compute_tables(intent, eps, extmacs, held)
        return Changed(frozenset(self.tables), frozenset(), frozenset())
