"""Every target, by name, in the order the CLI runs them."""
from __future__ import annotations

from fuzzing.run import Target


def all_targets() -> tuple[Target, ...]:
    from fuzzing import aaa, documents, kernel, records, wire
    return wire.TARGETS + aaa.TARGETS + kernel.TARGETS + documents.TARGETS + records.TARGETS


def by_name(names: list[str] | None) -> tuple[Target, ...]:
    targets = all_targets()
    if not names:
        return targets
    known = {t.name: t for t in targets}
    missing = [n for n in names if n not in known]
    if missing:
        raise SystemExit(f"unknown target(s) {', '.join(missing)}; known: {', '.join(known)}")
    return tuple(known[n] for n in names)
