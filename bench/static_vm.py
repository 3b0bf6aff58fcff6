"""A static VM's port-up: from its intent applied (`tenet apply`'s write, issued and returned)
to its first packet delivered to a VM of the same VN on another host — OVN's `lsp-add` of a VIF
already plugged, in tenet's terms.

The VM's namespace and port exist throughout (the lab built them); each round its NIC enters
the tenancy through `store.apply` and leaves it the same way, and the driver waits until the
removal is published and applied on both hosts before the next round. The VM probes the sink
every millisecond from before t0 (bench/probe.py); static neighbour entries both ways keep ARP
out of the figure.
"""
from __future__ import annotations

import copy
import subprocess
import sys
import time
from contextlib import ExitStack

from probe import PROBER, SINK, Prober, Sink
from tenet.lab.lab import Lab
from tenet.model.load import intent_to_doc
from tenet.model.parts import split
from tenet.store import keys, published
from tenet.store.apply import apply, plan_apply
from tenet.store.base import Store
from tenet.store.open import open_store
from tenet.store.records import AgentStatus


class StaticVm:
    """Lab `lab`'s VM `vm`, which the run takes in and out of the tenancy; `sink` on another host."""

    def __init__(self, lab: Lab, vm: str, sink: str) -> None:
        self.lab = lab
        self.vm = next(v for v in lab.intent.vms if v.name == vm)
        self.sink = next(v for v in lab.intent.vms if v.name == sink)
        _, self.present = split(intent_to_doc(lab.intent))
        self.absent = copy.deepcopy(self.present)
        del self.absent["vms"][vm]
        self.hosts = (self.vm.host, self.sink.host)

    def _write(self, store: Store, tenancy: dict) -> None:
        apply(store, plan_apply(store, tenancy, "bench/static_vm.py"))

    def _removed(self, store: Store) -> bool:
        """No host's tables list the VM's MAC, and both agents applied what they were given."""
        mac = self.vm.nics[0].mac
        for h in self.hosts:
            t, st = published.read(store, h), store.get(keys.status(h))
            if t is None or st is None or AgentStatus.from_json(st.value).generation != t.generation:
                return False
            if any(e.destination == mac for vt in t.vns for e in vt.entries):
                return False
        return True

    def _remove(self, store: Store, timeout: float = 10.0) -> None:
        self._write(store, self.absent)
        deadline = time.monotonic() + timeout
        while not self._removed(store):
            if time.monotonic() > deadline:
                raise RuntimeError(f"timed out: {self.vm.name}'s removal applied on {', '.join(self.hosts)}")
            time.sleep(0.002)

    def prepare(self) -> None:
        """Static neighbours both ways; the VM out of the tenancy, and that applied."""
        nic, s = self.vm.nics[0], self.sink.nics[0]
        self.lab.exec(self.vm.name, "ip", "neigh", "replace", str(s.ip.ip), "lladdr", s.mac, "dev", "eth0", "nud",
                      "permanent", check=True)
        self.lab.exec(self.sink.name, "ip", "neigh", "replace", str(nic.ip.ip), "lladdr", nic.mac, "dev", "eth0", "nud",
                      "permanent", check=True)
        store = open_store(self.lab.store_url)
        try:
            self._remove(store, 30.0)
        finally:
            store.close()

    def rounds(self, n: int) -> tuple[list[float], list[float]]:
        """`n` port-ups (prepared): seconds to the first packet at the sink from the apply's
        write issued (its plan computed before), and from its return (the store's commit)."""
        py = sys.executable
        issued: list[float] = []
        committed: list[float] = []
        with ExitStack() as stack:
            store = open_store(self.lab.store_url)
            stack.callback(store.close)
            probe = Sink(self.lab.popen(self.sink.name, py, "-c", SINK, stdout=subprocess.PIPE, text=True))
            stack.callback(probe.close)
            prober = Prober(self.lab.popen(self.vm.name, py, "-c", PROBER, str(self.sink.nics[0].ip.ip),
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True))
            stack.callback(prober.close)
            for i in range(n):
                prober.go(str(i))
                change = plan_apply(store, self.present, "bench/static_vm.py")
                t0 = time.monotonic()
                apply(store, change)
                t1 = time.monotonic()  # the intent is written: the store's commit returned
                t = probe.first(str(i))
                issued.append(t - t0)
                committed.append(t - t1)
                self._remove(store)
        return issued, committed
