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


def allocate(needed: Iterable[Key], existing: Mapping[Key, str]) -> dict[Key, str]:
    """Existing allocations plus a fresh, never-used MAC for each needed key without one."""
    result = dict(existing)
    used = {index_of(m) for m in existing.values()}
    cursor = max((u for u in used if u is not None), default=0) + 1
    for key in sorted(set(needed)):
        if key in result:
            continue
        while cursor in used:
            cursor += 1
        if cursor >= SPACE:
            raise ValueError("external MAC space exhausted")
        result[key] = mac_of(cursor)
        used.add(cursor)
    return result
