"""Reading the leader's Observed record (controller/observed.py writes it and says what it promises)."""
from __future__ import annotations

from tenet.store.base import KeyValue
from tenet.store.records import Observed


def through(kv: KeyValue | None) -> int:
    """The revision up to which the stored record promises every input published (0: none yet)."""
    if kv is None:
        return 0
    rec = Observed.from_json(kv.value)
    return kv.mod_revision if kv.mod_revision == rec.revision + 1 else rec.revision
