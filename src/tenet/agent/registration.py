"""The host registers itself: a chassis record (what it is, from its config and its uplink)
and an Alive key under a lease the agent keeps renewing (like OVN's chassis, Calico's node).

It runs in a thread with its own store connection, so a main loop blocked in a watch or a
slow reconcile never lets the lease lapse. When the store is away it keeps trying; when the
lease lapsed meanwhile (the controller may have shown the host down) it registers anew. A
clean stop revokes the lease: the host shows down at once; peers keep it for the controller's
grace period (docs/agent.md), so a restart does not disturb them.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from typing import Callable

from tenet.agent.config import AgentConfig
from tenet.store import keys
from tenet.store.base import LeaseExpired, Store, StoreError
from tenet.store.open import open_store
from tenet.store.records import Alive, Chassis

log = logging.getLogger("tenet.agent")


def chassis_of(config: AgentConfig, address: str) -> Chassis:
    return Chassis(host=config.host, network=config.network, address=address, uplink=config.uplink, role=config.role,
                   capability=config.capability, admission_shards=config.admission_shards,
                   authenticator=config.authenticator, mab=config.mab)


class Registration:
    def __init__(self, config: AgentConfig, address: Callable[[], str | None],
                 open: Callable[[str], Store] = open_store) -> None:
        self.config, self.address, self.open = config, address, open
        self.stopping = threading.Event()
        self.registered = threading.Event()  # set while the Alive key is believed to stand
        self.thread = threading.Thread(target=self._run, name="registration", daemon=True)
        self.lease = 0

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(5)

    def _run(self) -> None:
        store: Store | None = None
        written: Chassis | None = None
        away = False
        every = max(self.config.lease_ttl / 3, 0.5)
        while not self.stopping.is_set():
            try:
                store = store or self.open(self.config.store)
                address = self.address()
                if address is None:
                    log.warning("uplink %s has no IPv4 address: not registering yet", self.config.uplink)
                else:
                    chassis = chassis_of(self.config, address)
                    if chassis != written:
                        kv = store.get(keys.chassis(self.config.host))
                        if kv is None or kv.value != chassis.to_json():
                            store.put(keys.chassis(self.config.host), chassis.to_json())
                            log.info("chassis %s registered at %s on %s", chassis.host, address, chassis.network)
                        written = chassis
                    self._renew(store)
                if away:
                    log.info("store reachable again")
                    away = False
            except StoreError as e:
                if not away:
                    log.warning("store unreachable, keeping the kernel as it is: %s", e)
                    away = True
                self.registered.clear()
            self.stopping.wait(every)
        if store is not None and self.lease:
            try:
                store.revoke(self.lease)
            except StoreError:
                pass  # the lease lapses by itself
            store.close()

    def _renew(self, store: Store) -> None:
        if self.lease:
            try:
                store.keepalive(self.lease)
                return
            except LeaseExpired:
                log.warning("lease %x lapsed: registering again", self.lease)
                self.registered.clear()
        self.lease = store.grant(self.config.lease_ttl)
        store.put(keys.alive(self.config.host), Alive(pid=os.getpid(), since=time.time(), lease=self.lease).to_json(), lease=self.lease)
        self.registered.set()
