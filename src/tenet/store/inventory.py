"""The hosts an operator sees (`tenet hosts`): declared or registered, up or down, and how
far each agent is with its tables. Read-only; one pass over the store."""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from tenet.store import keys
from tenet.store.base import Delete, Compare, Store, StoreError
from tenet.store.intent import compose, read_stored, registered
from tenet.store.records import AgentStatus, Alive, RecordError, TablesHead, part_from_json


class HostState(str, Enum):
    UP = "up"  # registered, its lease renewed
    DOWN = "down"  # registered, its lease lapsed (peers drop it after the controller's grace)
    UNREGISTERED = "unregistered"  # declared in the fabric; its agent has not registered
    REFUSED = "refused"  # registered, but its chassis does not fit the fabric (see `problem`)


@dataclass(frozen=True)
class HostView:
    name: str
    network: str
    address: str
    role: str
    state: HostState
    published: int = 0  # the generation of its tables (0: none)
    applied: int = 0  # the generation its agent reports applied
    agent: str = ""  # its agent's state
    since: float = 0.0  # up: when its agent registered (wall clock)
    problem: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "network": self.network, "address": self.address, "role": self.role,
                "state": self.state.value, "published": self.published, "applied": self.applied, "agent": self.agent,
                "since": self.since, "problem": self.problem}


def hosts(store: Store) -> list[HostView]:
    stored = read_stored(store)
    fabric_doc = part_from_json(stored.fabric.value, "fabric")
    declared = {n: s for section in ("hosts", "switches") for n, s in (fabric_doc.get(section) or {}).items()
                if isinstance(s, dict) and "switch" not in s}
    merged, problems = registered(fabric_doc, stored.chassis)
    refused = {p.path.split(".", 1)[1]: p.message for p in problems}
    chassis = {c.host: c for c in stored.chassis}
    out = []
    for name in sorted(set(declared) | set(chassis)):
        c = chassis.get(name)
        spec = (merged.get("hosts") or {}).get(name) or (merged.get("switches") or {}).get(name) or declared.get(name, {})
        alive = store.get(keys.alive(name))
        if c is None:
            state = HostState.UNREGISTERED
        elif name in refused:
            state = HostState.REFUSED
        else:
            state = HostState.UP if alive else HostState.DOWN
        since = _since(alive.value) if alive else 0.0
        t, s = store.get(keys.tables(name)), store.get(keys.status(name))
        published = TablesHead.from_json(t.value).generation if t else 0
        status = AgentStatus.from_json(s.value) if s else None
        role = c.role.value if c else ("access-switch" if name in (fabric_doc.get("switches") or {}) else spec.get("role", "hypervisor"))
        out.append(HostView(name, c.network if c else spec.get("network", ""), c.address if c else str(spec.get("ip", "")),
                            role, state, published, status.generation if status else 0,
                            status.state.value if status else "", since, refused.get(name, "")))
    return out


def _since(value: bytes) -> float:
    try:
        return Alive.from_json(value).since
    except RecordError:
        return 0.0


def forget(store: Store, host: str) -> None:
    """Decommission a registered host: its chassis goes. Refused while its agent is alive
    (the check and the delete are one transaction) and while the tenancy places anything on
    it that the fabric would then lack."""
    stored = read_stored(store)
    declared = part_from_json(stored.fabric.value, "fabric")
    if host not in (declared.get("hosts") or {}) and host not in (declared.get("switches") or {}):
        placed = [vm.name for vm in compose(stored).vms if vm.host == host]
        if placed:
            raise StoreError(f"{host} still runs {', '.join(sorted(placed))} in the tenancy: move or remove them first")
    ok, _ = store.txn([Compare(keys.alive(host), "create", "==", 0), Compare(keys.chassis(host), "create", "!=", 0)],
                      [Delete(keys.chassis(host))])
    if not ok:
        if store.get(keys.chassis(host)) is None:
            raise StoreError(f"{host} is not registered")
        raise StoreError(f"{host} is up (its agent renews its lease): stop its agent first")
