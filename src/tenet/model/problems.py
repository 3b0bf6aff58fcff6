"""The loader's problem collector: every error with its path, and the items it rejected.

An item that failed its own checks (a VN with a bad VN-ID, a host on no network, a network with
a bad subnet) is remembered by kind and name, so what refers to it is skipped rather than
reported: one bad VN-ID is one problem, not one more "no virtual network named …" per VM on it.
The skipped dependents are never accepted either, and the rejected item's own problem fails the
load as a whole, so nothing is half-applied.
"""
from __future__ import annotations

from enum import Enum
from typing import Any, Iterable, Pattern

from tenet.model.errors import Problem


class Kind(Enum):
    """What a reference names (and may find rejected)."""

    NETWORK = "physical network"
    HOST = "host"
    VN = "virtual network"
    VROUTER = "virtual router"


class Problems:
    def __init__(self, keys: dict[str, set[str]], name: Pattern[str]) -> None:
        self.items: list[Problem] = []
        self.keys = keys  # the keys each kind of mapping may have
        self.name = name  # what a node's name must match
        self.rejected: dict[Kind, set[str]] = {k: set() for k in Kind}

    def add(self, path: str, message: str) -> None:
        self.items.append(Problem(path, message))

    def reject(self, kind: Kind, names: Iterable[Any]) -> None:
        """`names` of `kind` failed their own checks (each has its problem already)."""
        self.rejected[kind] |= {str(n) for n in names}

    def missing(self, kind: Kind, name: Any, path: str, message: str | None = None) -> None:
        """A reference to `name`, which is not among the accepted items of `kind`: a problem
        unless that item was rejected, whose own problem already says why."""
        if not self.is_rejected(kind, name):
            self.add(path, message or (f"no {kind.value} named {name!r}" if name else "required"))

    def is_rejected(self, kind: Kind, name: Any) -> bool:
        return isinstance(name, str) and name in self.rejected[kind]

    def mapping(self, value: Any, path: str, kind: str) -> dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping, not {type(value).__name__}")
            return {}
        for k in value:
            if k not in self.keys[kind]:
                self.add(f"{path}.{k}" if path else str(k),
                         f"unknown key (expected one of: {', '.join(sorted(self.keys[kind]))})")
        return value

    def names(self, value: Any, path: str) -> dict:
        """A mapping of names, those that are valid node names kept."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.add(path, f"must be a mapping of names, not {type(value).__name__}")
            return {}
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not self.name.match(k):
                self.add(f"{path}.{k}", f"name must match {self.name.pattern.strip('^$')}")
                continue
            out[k] = v
        return out


def declared(value: Any) -> set[str]:
    """Every name a section declares, valid or not: what was not accepted of them was rejected."""
    return {str(k) for k in value} if isinstance(value, dict) else set()
