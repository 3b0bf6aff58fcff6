"""What a host can run and what a VM takes (the placement advisor's inputs, compute/placement.py).

A host declares its `capacity` in VM slots (`capacity: 8`) or in CPUs and memory
(`capacity: {cpu: 16, memory: 64GiB}`, or all three); a VM its `size` (default one CPU and
1 GiB; every VM takes one slot). A host that declares nothing is never a placement target:
the advisor cannot know it has room. A host over its capacity is not an error of the
document (VMs are where they are); the advisor reports it. Pure.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

GiB = 1 << 30
UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": GiB, "TiB": 1 << 40,
         "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
MEMORY = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*$")
LIMIT = 2**63 - 1


@dataclass(frozen=True)
class Size:
    """A VM's demand: CPUs and memory in bytes; it also takes one slot."""

    cpu: int = 1
    memory: int = GiB

    slots = 1


DEFAULT_SIZE = Size()


@dataclass(frozen=True)
class Capacity:
    """What a host offers, in the dimensions the operator declared (None: not limited in it)."""

    slots: int | None = None
    cpu: int | None = None
    memory: int | None = None  # bytes

    def exceeded(self, slots: int, cpu: int, memory: int) -> tuple[str, ...]:
        """The dimensions a load of that many slots, CPUs and bytes exceeds, in words."""
        out = []
        if self.slots is not None and slots > self.slots:
            out.append(f"{slots} slots of {self.slots}")
        if self.cpu is not None and cpu > self.cpu:
            out.append(f"{cpu} CPUs of {self.cpu}")
        if self.memory is not None and memory > self.memory:
            out.append(f"{memory_text(memory)} of {memory_text(self.memory)} memory")
        return tuple(out)

    def share(self, slots: int, cpu: int, memory: int) -> float:
        """How full a load makes the host: its fullest declared dimension (1.0 = full)."""
        used = [(slots, self.slots), (cpu, self.cpu), (memory, self.memory)]
        return max((u / c if c else (float("inf") if u else 0.0) for u, c in used if c is not None), default=0.0)


class Problems(Protocol):
    """The loader's collector (model/load.py): a problem by its path; a mapping checked for
    unknown keys of a kind."""

    def add(self, path: str, message: str) -> None: ...

    def mapping(self, value: Any, path: str, kind: str) -> dict: ...


def memory_bytes(value: Any) -> int:
    """'4GiB' -> 4294967296 (KiB..TiB binary, KB..TB decimal, B); ValueError naming the cause."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError(f"{value!r} needs a unit, like {value}GiB or {value}MiB")
    m = MEMORY.match(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"not an amount of memory like 4GiB or 512MiB: {value!r}")
    number, unit = m.groups()
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r} in {value!r} (one of {', '.join(UNITS)})")
    try:
        n = Decimal(number) * UNITS[unit]
    except InvalidOperation:
        raise ValueError(f"not an amount of memory: {value!r}") from None
    if n != n.to_integral_value():
        raise ValueError(f"{value!r} is not a whole number of bytes")
    if n > LIMIT:
        raise ValueError(f"{value!r} is too large")
    return int(n)


def memory_text(n: int) -> str:
    """The largest binary unit that states `n` bytes exactly: memory_bytes(memory_text(n)) == n."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if n and n % UNITS[unit] == 0:
            return f"{n // UNITS[unit]}{unit}"
    return f"{n}B"


def _count(p: Problems, value: Any, path: str, least: int) -> int | None:
    if not isinstance(value, int) or isinstance(value, bool) or not least <= value <= LIMIT:
        p.add(path, f"must be a whole number >= {least}, not {value!r}")
        return None
    return value


def _memory(p: Problems, value: Any, path: str, least: int) -> int | None:
    try:
        n = memory_bytes(value)
    except ValueError as e:
        p.add(path, str(e))
        return None
    if n < least:
        p.add(path, f"must be at least {memory_text(least)}, not {value!r}")  # (a minus sign is no amount at all)
        return None
    return n


def parse_capacity(p: Problems, value: Any, path: str) -> Capacity | None:
    """`8` (slots) or `{slots: 8, cpu: 16, memory: 64GiB}` (any of the three); None: a problem."""
    if isinstance(value, int) and not isinstance(value, bool):
        slots = _count(p, value, path, 0)
        return None if slots is None else Capacity(slots=slots)
    if not isinstance(value, dict):
        p.add(path, f"must be VM slots (a whole number) or a mapping of slots, cpu and memory, not {value!r}")
        return None
    spec = p.mapping(value, path, "capacity")
    if not spec:
        p.add(path, "name at least one of slots, cpu and memory")
        return None
    counts = {k: _count(p, spec[k], f"{path}.{k}", 0) if k in spec else None for k in ("slots", "cpu")}
    memory = _memory(p, spec["memory"], f"{path}.memory", 0) if "memory" in spec else None
    if any(k in spec and counts[k] is None for k in counts) or ("memory" in spec and memory is None):
        return None
    if set(spec) - {"slots", "cpu", "memory"}:
        return None
    return Capacity(counts["slots"], counts["cpu"], memory)


def parse_size(p: Problems, value: Any, path: str) -> Size | None:
    """`{cpu: 2, memory: 4GiB}` (either may be left at its default); None: a problem."""
    if not isinstance(value, dict):
        p.add(path, f"must be a mapping of cpu and memory, not {value!r}")
        return None
    spec = p.mapping(value, path, "size")
    cpu = _count(p, spec["cpu"], f"{path}.cpu", 1) if "cpu" in spec else DEFAULT_SIZE.cpu
    memory = _memory(p, spec["memory"], f"{path}.memory", 1) if "memory" in spec else DEFAULT_SIZE.memory
    if cpu is None or memory is None or set(spec) - {"cpu", "memory"}:
        return None
    return Size(cpu, memory)


def capacity_doc(c: Capacity) -> int | dict:
    """The canonical form: a bare number when only slots are declared."""
    if c.cpu is None and c.memory is None and c.slots is not None:
        return c.slots
    return {**({"slots": c.slots} if c.slots is not None else {}), **({"cpu": c.cpu} if c.cpu is not None else {}),
            **({"memory": memory_text(c.memory)} if c.memory is not None else {})}


def size_doc(s: Size) -> dict:
    return {"cpu": s.cpu, "memory": memory_text(s.memory)}
