"""The TESs that attached themselves (their NVEs' reports), and asking an NVE to end one."""
from __future__ import annotations

from tenet.store import keys
from tenet.store.base import Put, Store
from tenet.store.records import EndpointReport, Revocation


class NotAttached(LookupError):
    pass


def attached(store: Store) -> list[EndpointReport]:
    return [EndpointReport.from_json(kv.value) for kv in store.range(keys.endpoints_prefix())]


def revoke(store: Store, mac: str, why: str) -> tuple[str, ...]:
    """Ask every NVE holding a session of `mac` to end it (TERMINATE, admin); the hosts asked.
    The NVE clears the request once it has handled it."""
    mac = mac.lower().replace("-", ":")
    hosts = tuple(sorted({r.host for r in attached(store) if r.mac == mac}))
    if not hosts:
        raise NotAttached(f"no attached TES has MAC {mac} (see: tenet endpoints)")
    store.txn([], [Put(keys.revoke(h, mac), Revocation(why).to_json()) for h in hosts])
    return hosts
