"""Endpoint churn: TESs attaching and leaving on one host and VN, as the controller sees them.

A thread writes and deletes endpoint reports (store/records.py EndpointReport) the way an NVE
does when TESs come and go, one every `every` seconds among `macs` endpoints. The one that
changes is picked by a Gray code, so the set present never repeats within 2**macs changes:
every change is new content the controller must publish (a cycle would now and then bring
back tables already published, which need no write). Their ports do not exist, so the host's
agent waits for them and nothing else is touched: a failover test or bench can tell the
churn's host apart from hosts whose tables must not change. Everything is deleted on the way out.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tenet.store import keys
from tenet.store.open import open_store
from tenet.store.records import EndpointReport


@dataclass
class Churn:
    writes: int = 0  # reports written or deleted so far
    last: int = 0  # the store revision of the latest
    stop: threading.Event = field(default_factory=threading.Event)


@contextmanager
def endpoint_churn(store_url: str, host: str, vn: str, vnid: int, *, macs: int = 16, every: float = 0.05) -> Iterator[Churn]:
    if not 1 <= macs <= 255:
        raise ValueError(f"macs must be 1..255, not {macs}")
    churn = Churn()
    store = open_store(store_url)
    reports = [EndpointReport(vn=vn, vnid=vnid, mac=f"02:c7:00:00:00:{i:02x}", port=f"tv-churn{i}", host=host)
               for i in range(macs)]

    def run() -> None:
        present: set[int] = set()
        i = 0
        while not churn.stop.wait(every):
            i += 1
            n = (i & -i).bit_length() - 1  # the bit a Gray code flips at step i
            r = reports[n % macs]
            key = keys.endpoint(host, vn, r.mac)
            churn.last = store.delete(key) if n % macs in present else store.put(key, r.to_json())
            present ^= {n % macs}
            churn.writes += 1

    t = threading.Thread(target=run, name="churn", daemon=True)
    t.start()
    try:
        yield churn
    finally:
        churn.stop.set()
        t.join()
        for r in reports:
            store.delete(keys.endpoint(host, vn, r.mac))
        store.close()
