"""The store contract, modelled on etcd v3 so that an etcd backend drops in unchanged.

Keys are strings, values bytes; every mutation gets a store-wide revision (0 for an empty
store, 1 for its first write); a transaction's ops share one revision; watch replays history
from a revision, then waits. A value compare on a missing key is false (etcd's rule). Leases
give liveness: a key put under a lease is deleted (one revision, delete events) when the lease
is revoked or not kept alive within its TTL. docs/store.md has the backends and the rules.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, Union


class StoreError(RuntimeError):
    pass


class Compacted(StoreError):
    def __init__(self, revision: int) -> None:
        super().__init__(f"revision {revision} has been compacted")
        self.revision = revision


class LeaseExpired(StoreError):
    """The lease is unknown: expired, revoked or never granted. Grant a new one."""

    def __init__(self, lease: int) -> None:
        super().__init__(f"lease {lease:x} has expired or does not exist")
        self.lease = lease


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int
    version: int


@dataclass(frozen=True)
class Event:
    kind: Literal["put", "delete"]
    key: str
    value: bytes | None
    revision: int


@dataclass(frozen=True)
class Compare:
    key: str
    target: Literal["mod", "value", "version", "create"]
    op: Literal["==", "!=", ">", "<"]
    operand: int | bytes


@dataclass(frozen=True)
class Put:
    key: str
    value: bytes
    lease: int = 0  # 0: no lease (a put without one detaches the key from its old lease)


@dataclass(frozen=True)
class Delete:
    key: str


@dataclass(frozen=True)
class DeletePrefix:
    prefix: str


Op = Union[Put, Delete, DeletePrefix]


class Store(Protocol):
    def get(self, key: str) -> KeyValue | None: ...
    def range(self, prefix: str) -> list[KeyValue]: ...
    def put(self, key: str, value: bytes, lease: int = 0) -> int: ...
    def delete(self, key: str) -> int: ...
    def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> tuple[bool, int]: ...
    def revision(self) -> int: ...
    def watch(self, prefix: str, start_revision: int, timeout: float) -> list[Event]: ...
    def compact(self, revision: int) -> None: ...
    # Leases: grant returns a new lease's id (its TTL may be raised to the backend's minimum);
    # keepalive renews it and returns its TTL, or raises LeaseExpired; revoke deletes its keys
    # now (a no-op for an unknown lease); lease_ttl gives its granted TTL and the seconds left
    # (None: unknown), which is how old its last renewal is (lab/liveness.py).
    def grant(self, ttl: int) -> int: ...
    def keepalive(self, lease: int) -> int: ...
    def revoke(self, lease: int) -> None: ...
    def lease_ttl(self, lease: int) -> tuple[int, float] | None: ...
    def close(self) -> None: ...


MAX_TXN_OPS = 100  # etcd refuses a transaction of more than 128 operations (its --max-txn-ops)


def in_chunks(store: Store, ops: Sequence[Op], compares: Sequence[Compare] = ()) -> int:
    """Write `ops`, MAX_TXN_OPS to a commit (each chunk all or nothing), each only if
    `compares` hold when it commits (none: unconditionally): the revision of the last commit,
    by which every op is in. 0 at the first chunk refused: the chunks before it stay written,
    none after it is tried."""
    if not ops:
        return store.revision()
    rev = 0
    for i in range(0, len(ops), MAX_TXN_OPS):
        ok, rev = store.txn(compares, ops[i:i + MAX_TXN_OPS])
        if not ok:
            return 0
    return rev


def follow(store: Store, prefix: str, rev: int, timeout: float) -> tuple[int, list[Event] | None]:
    """Wait up to `timeout` for changes under `prefix` from `rev`: the revision to watch from
    next, and the events — None when the history was compacted away, which a level-triggered
    reader treats as "anything may have changed: look again"."""
    try:
        events = store.watch(prefix, rev, timeout)
    except Compacted:
        return store.revision() + 1, None
    return (max(e.revision for e in events) + 1 if events else rev), events
