"""How far the published tables reflect the inputs: the leader's Observed record.

`Observed(revision=R)` promises that every input (intent, endpoint reports) written up to
revision R is reflected in the published tables, so "wait until R >= the revision I wrote at"
is an honest "my change is published" — what a lab or an operator waits on before asking the
agents whether they applied it. The leader writes it, fenced:

* after a pass, with R = the revision it read *before* the pass read its inputs;
* after it has watched only others' non-input writes go by (agents' statuses, say), with
  R = the last revision it saw: none of them needs a pass, so the tables reflect those too.

It writes nothing when R would not advance, so an idle system, and a resync that finds
nothing new, write nothing. The record's own write is one more revision that is not an input:
when it lands at R + 1, nothing came between, and the promise covers that revision too
(`through`). Without that rule the record could never catch up with its own write.
"""
from __future__ import annotations

from dataclasses import dataclass

from tenet.controller.fence import Deposed, Fence
from tenet.store import keys
from tenet.store.base import Put, Store
from tenet.store.observed import through
from tenet.store.records import Observed


def reflects(store: Store, revision: int) -> bool:
    """Every input written up to `revision` is in the published tables."""
    return through(store.get(keys.controller_observed())) >= revision


@dataclass
class Witness:
    """The leader's side: writes the record when what it can promise advances."""

    leader: str
    fence: Fence | None = None
    covered: int = 0  # what the record this leader wrote promises (0: it wrote none yet)

    def saw(self, store: Store, revision: int) -> None:
        """Every input up to `revision` is published: say so, unless the record already does."""
        if revision <= self.covered:
            return
        compares = self.fence.compares() if self.fence else ()
        ok, rev = store.txn(compares, [Put(keys.controller_observed(), Observed(revision=revision, leader=self.leader).to_json())])
        if not ok:
            assert self.fence is not None
            raise Deposed(self.fence)
        self.covered = rev if rev == revision + 1 else revision
