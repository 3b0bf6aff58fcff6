"""Fencing: a leader's writes hold only while its term lasts.

A term is named by the create revision of the leader key (keys.controller_leader()). Every
write the leader makes carries a compare that the key still has that create revision; once
the key is gone (lease revoked or lapsed) or held by a successor (a new creation, a new
revision), the store refuses the write whole, however late it arrives: a leader paused past
its lease, or one whose renewals stopped reaching the store, cannot overwrite its successor's
tables or allocations. No clock is trusted for this; the store's own order decides.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tenet.store import keys
from tenet.store.base import Compare, Op, Store, in_chunks


@dataclass(frozen=True)
class Fence:
    term: int  # the leader key's create revision while this leader holds it

    def compares(self) -> tuple[Compare, ...]:
        return (Compare(keys.controller_leader(), "create", "==", self.term),)


class Deposed(Exception):
    """A fenced write was refused: the term is over. Stop publishing; follow again."""

    def __init__(self, fence: Fence) -> None:
        super().__init__(f"term {fence.term} is over: the leader key is gone or held by a successor")
        self.fence = fence


def write(store: Store, ops: Sequence[Op], fence: Fence | None) -> None:
    """Write `ops` in chunks, each only while `fence`'s term lasts (None: unconditionally, for
    tools and tests that run without an election); Deposed when the store refuses."""
    if fence is None:
        in_chunks(store, ops)
    elif not in_chunks(store, ops, fence.compares()):
        raise Deposed(fence)
