"""The TESs that attached themselves (their NVEs' reports), and asking an NVE to end one."""
from __future__ import annotations

from collections.abc import Collection

from tenet.store import keys
from tenet.store.base import Put, Store
from tenet.store.records import EndpointReport, Revocation


class NotAttached(LookupError):
    pass


def attached(store: Store) -> list[EndpointReport]:
    return [EndpointReport.from_json(kv.value) for kv in store.range(keys.endpoints_prefix())]


def revoke(store: Store, mac: str, why: str, vns: Collection[str] | None = None) -> tuple[str, ...]:
    """Ask every NVE holding a session of `mac` in one of `vns` (None: in any VN, the operator's
    call) to end that session (TERMINATE, admin); the hosts asked. Each request names its VN:
    tenants reuse MACs, and another VN's TES of the same MAC on the same NVE must stay. The NVE
    clears a request once it has handled it."""
    mac = mac.lower().replace("-", ":")
    sessions = sorted({(r.host, r.vn) for r in attached(store) if r.mac == mac and (vns is None or r.vn in vns)})
    if not sessions:
        raise NotAttached(f"no attached TES has MAC {mac} (see: tenet endpoints)")
    store.txn([], [Put(keys.revoke(h, mac, vn), Revocation(why, vn).to_json()) for h, vn in sessions])
    return tuple(sorted({h for h, _ in sessions}))
