"""External MACs: the unique addresses VMs wear on a physical network (seed 002, VIC).

Allocation is pure: given what is already allocated (read back from the store, which makes
it stable across controller restarts) and what is needed, return the complete map. Existing
allocations are never changed; released ones are not reused while still recorded.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

# 06 = locally administered unicast; 74:6e = "tn".
PREFIX = 0x06746E000000
SPACE = 1 << 24

Key = tuple[str, str, int]  # (vn, vm, nic index)


def mac_of(n: int) -> str:
    v = PREFIX + n
    return ":".join(f"{(v >> s) & 0xFF:02x}" for s in range(40, -8, -8))


def index_of(mac: str) -> int | None:
    v = int(mac.replace(":", ""), 16)
    n = v - PREFIX
    return n if 0 <= n < SPACE else None


class Allocator:
    """Allocations kept between passes, so each new key costs a step of the cursor, not a
    scan of every MAC allocated so far."""

    def __init__(self, existing: Mapping[Key, str]) -> None:
        self.macs = dict(existing)
        self.used = {index_of(m) for m in existing.values()}
        self.cursor = max((u for u in self.used if u is not None), default=0) + 1

    def allocate(self, needed: Iterable[Key]) -> dict[Key, str]:
        """A fresh, never-used MAC for each needed key without one: the new allocations."""
        fresh = {}
        for key in sorted(set(k for k in needed if k not in self.macs)):
            while self.cursor in self.used:
                self.cursor += 1
            if self.cursor >= SPACE:
                raise ValueError("external MAC space exhausted")
            fresh[key] = self.macs[key] = mac_of(self.cursor)
            self.used.add(self.cursor)
        return fresh


    def release(self, fresh: Mapping[Key, str]) -> None:
        """Forget allocations that were never stored (the write failed)."""
        for key, mac in fresh.items():
            if self.macs.get(key) == mac:
                del self.macs[key]
                self.used.discard(index_of(mac))


def allocate(needed: Iterable[Key], existing: Mapping[Key, str]) -> dict[Key, str]:
    """Existing allocations plus a fresh, never-used MAC for each needed key without one."""
    allocator = Allocator(existing)
    allocator.allocate(needed)
    return allocator.macs
