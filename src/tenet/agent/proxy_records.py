"""What the 802.1X proxy knows of its host's VMs, kept fresh off the port-up path.

The controller publishes the host's VM ports under one key (`keys.proxy(host)`, ProxyPorts).
A store read per kernel link event would put a round trip to the store (≈ 2 ms on etcd)
between a VM's port appearing and its EAPOL-Start; instead a thread follows the key and
the proxy's loop reads `ProxyRecords.current`, a copy already in memory. Level-triggered: the
watch only says when to look, every look is a full read of the key, and a full read happens at
least every RESYNC whatever the watch says — a missed or compacted-away event costs at most
that long, and a store that is away leaves the last records in force.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass

from tenet.agent.proxy8021x import Credentials
from tenet.store import keys
from tenet.store.base import Store, StoreError, follow
from tenet.store.etcd import PermissionDenied
from tenet.store.records import ProxyPorts, RecordError

log = logging.getLogger("tenet.proxy")
RESYNC = 1.0  # s between full reads of the key whatever the watch says (the proxy's scan used to read it this often)
RETRY = 1.0  # s before following again after the store failed


@dataclass(frozen=True)
class VmRecord:
    """What the host knows of one VM port: whose MAC, which VN, and the secret it vouches with."""

    mac: str
    vn: str
    creds: Credentials | None  # None: MAB


def vm_records(ports: ProxyPorts) -> dict[str, VmRecord]:
    """VM port -> its record, from what the controller published for this host."""
    return {p.port: VmRecord(p.mac, p.vn, None if p.mab else Credentials(p.identity, p.password, p.method))
            for p in ports.ports}


def read_records(store: Store, host: str, last: dict[str, VmRecord]) -> dict[str, VmRecord]:
    """This host's published VM ports (none yet: none). A malformed value keeps the last ones."""
    kv = store.get(keys.proxy(host))
    if kv is None:
        return {}
    try:
        return vm_records(ProxyPorts.from_json(kv.value))
    except RecordError as e:
        log.error("%s: %s", keys.proxy(host), e)
        return last


class ProxyRecords:
    """The host's VM records: read once when made (so a restarted proxy starts from the
    complete set, never from nothing), then followed by a thread on its own store client.
    `wake` is a file descriptor that turns readable when `current` changed (for select)."""

    def __init__(self, store: Store, host: str, resync: float = RESYNC) -> None:
        self.store, self.host, self.resync = store, host, resync
        self.rev = store.revision() + 1
        self.current: dict[str, VmRecord] = read_records(store, host, {})  # after the revision: a change between is watched
        self.reads = 1  # full reads of the key so far (tests: the resync really reads)
        self.polling = False  # the store refused the watch (an RBAC grant from before): RESYNC alone
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="proxy-records", daemon=True)

    @property
    def wake(self) -> int:
        return self._wake_r

    def start(self) -> ProxyRecords:
        self._thread.start()
        return self

    def drain(self) -> None:
        """Consume the wake-ups so far (the loop then reads `current`, which is newer)."""
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass

    def stop(self) -> None:
        """End the thread (within its watch's wait, ≤ 1 s); the store stays the caller's."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        if not self._thread.is_alive():  # else it may still write: its pipe stays open
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._follow()
            except StoreError as e:  # keep the last records; start over (a full read) when it answers
                log.warning("%s: store unreachable, keeping the last VM records: %s", keys.proxy(self.host), e)
                self._stopping.wait(RETRY)
                self.rev = 0

    def _follow(self) -> None:
        key = keys.proxy(self.host)
        if self.rev == 0:
            self.rev = self.store.revision() + 1
            self._read()
        due = time.monotonic() + self.resync
        while not self._stopping.is_set():
            wait = max(0.0, min(due - time.monotonic(), 1.0))
            if self.polling:
                self._stopping.wait(wait)
                events = []
            else:
                try:
                    self.rev, events = follow(self.store, key, self.rev, timeout=wait)
                except PermissionDenied as e:  # a grant from before the proxy watched: reads still work
                    log.warning("%s; reading it every %.0f s instead (re-apply the store's RBAC: `tenet store "
                                "rbac`)", e, self.resync)
                    self.polling, events = True, []
            if events is None or any(e.key == key for e in events) or time.monotonic() >= due:
                self._read()  # the watch's events only say "look": the read is the truth
                due = time.monotonic() + self.resync

    def _read(self) -> None:
        records = read_records(self.store, self.host, self.current)
        self.reads += 1
        if records != self.current:
            self.current = records  # one reference swap: the loop sees the old dict or the new one
            try:
                os.write(self._wake_w, b"!")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already
