"""The one interface to VMs and virtual routers: create, destroy, start, stop, pause, resume,
migrate, copy (seed 001's primitives, for ordinary VMs as for routers).

The intent says what a VM is — running, paused or stopped, on which host — and the
controller and agents follow it: a VM that is not running has no forwarding entries (its
host's NVE gates its ports), and a stopped or paused VR's links release their guarantees.
Every edit goes through the store with a compare-and-swap (store/intent.py `set_vm`,
`edit_intent`); what only a hypervisor can do is the backend's (hypervisor/backend.py).
The order of the two makes every step safe to stop at: create builds the VM before the
intent names it (a refused edit removes it again), destroy edits the intent first; pause
freezes before the VM's entries go, resume puts them back before it thaws; stop takes its
entries away before its NICs go down, start brings them up first.

Each operation returns once its change is live: `settle` hears the intent the operation
wrote, after everything else it did, and returns when the controller and the agents have
applied it.
"""
from __future__ import annotations

from collections.abc import Callable

from tenet.hypervisor.addresses import copied_nics
from tenet.hypervisor.backend import Backend
from tenet.hypervisor.errors import HypervisorError
from tenet.hypervisor import migration
from tenet.model.errors import IntentError, Problem
from tenet.model.load import intent_to_doc, load_intent
from tenet.model.tenancy import Intent, Vm, VmState
from tenet.store import keys
from tenet.store.base import Store
from tenet.store.intent import edit_intent, read_intent, set_vm
from tenet.store.open import open_store

Settle = Callable[[Intent], None]


class Hypervisor:
    def __init__(self, store_url: str, vms: Backend, settle: Settle,
                 progress: Callable[[str], None] = lambda _: None) -> None:
        self.store_url, self.vms, self.settle, self.progress = store_url, vms, settle, progress
        self._store: Store | None = None  # kept while a migration polls it

    # -- the store --------------------------------------------------------------------------
    def intent(self) -> Intent:
        store = open_store(self.store_url)
        try:
            return read_intent(store)
        finally:
            store.close()

    def edit(self, change: Callable[[dict], None]) -> Intent:
        store = open_store(self.store_url)
        try:
            return edit_intent(store, change)
        finally:
            store.close()

    def set(self, name: str, **fields: str | None) -> Intent:
        store = open_store(self.store_url)
        try:
            return set_vm(store, name, **fields)
        finally:
            store.close()

    def admitted(self, awaited: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
        """Of (NVE, VN, MAC), those the NVE has not reported admitted yet (802.1X, MAB, NVO3)."""
        if not awaited:
            return []
        if self._store is None:
            self._store = open_store(self.store_url)
        return [w for w in awaited if self._store.get(keys.endpoint(*w)) is None]

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def vm(self, name: str, intent: Intent | None = None) -> Vm:
        vm = next((v for v in (intent or self.intent()).vms if v.name == name), None)
        if vm is None:
            raise HypervisorError(f"no VM or virtual router named {name!r}")
        return vm

    def _done(self, intent: Intent) -> Intent:
        self.settle(intent)
        return intent

    # -- create, copy, destroy --------------------------------------------------------------
    def create(self, name: str, host: str, nics: list[dict], *, tenant: str | None = None,
               router: bool = False) -> Intent:
        """A new running VM (or, with `router`, a VR of `tenant`) with NICs given as the
        topology file gives them (`{"network": VN, "ip": "10.1.0.5/24"}`). Validated before
        anything is built; nothing is left behind if the edit is refused."""

        def change(doc: dict) -> None:
            if name in doc.get("vrouters", {}) or name in doc.get("vms", {}):
                raise IntentError((Problem(f"vms.{name}", "a VM or virtual router of that name exists"),), "edit")
            if router:
                doc.setdefault("vrouters", {})[name] = {"host": host, "tenant": tenant or "default", "nics": nics}
            else:
                doc.setdefault("vms", {})[name] = {"host": host, "nics": nics}

        doc = intent_to_doc(self.intent())
        change(doc)
        planned = load_intent(doc, "edit")  # refused here: nothing is built
        vm = self.vm(name, planned)
        self.progress(f"creating {name} on {host}")
        self.vms.build(planned, vm)
        try:
            intent = self.edit(change)
        except BaseException:
            self.vms.remove(vm)
            raise
        if router:
            self.vms.route(intent)
        return self._done(intent)

    def copy(self, source: str, name: str, host: str | None = None) -> Intent:
        """A clone of `source` on the same VNs with new MACs and the lowest free addresses
        (a VR's links are not copied: a point-to-point link has its two ends)."""
        intent = self.intent()
        vm = self.vm(source, intent)
        links = frozenset(vl.name for vl in intent.vlinks)
        nics = copied_nics(intent, source, skip=links)
        tenant = next((v.tenant for v in intent.vrouters if v.name == source), None)
        return self.create(name, host or vm.host, nics, tenant=tenant, router=vm.router)

    def destroy(self, name: str) -> Intent:
        """Out of the intent (a VR with its virtual links), then gone. A VR's link peers lose
        that NIC; their later NICs move down one place (a VR's link NICs are numbered in link
        order) and are renamed in place: addresses and neighbours stay, routes are put back."""
        before = self.intent()
        vm = self.vm(name, before)
        gone = {vl.name for vl in before.vlinks if name in vl.ends}

        def change(doc: dict) -> None:
            doc["vrouters" if vm.router else "vms"].pop(name)
            for link in gone:
                doc["vlinks"].pop(link)

        intent = self.edit(change)
        self.progress(f"removing {name}")
        self.vms.remove(vm)
        for vl in before.vlinks:
            if vl.name in gone:
                peer = next(e for e in vl.ends if e != name)
                self.vms.renumber(self.vm(peer, before), self.vm(peer, intent))
        if intent.vrouters:
            self.vms.route(intent)
        return self._done(intent)

    # -- power --------------------------------------------------------------------------------
    def pause(self, name: str) -> Intent:
        vm = self.vm(name)
        self.vms.freeze(vm, True)
        return self._done(self.set(name, state=VmState.PAUSED.value))

    def resume(self, name: str) -> Intent:
        intent = self.set(name, state=None)
        self.vms.freeze(self.vm(name, intent), False)
        return self._done(intent)

    def stop(self, name: str) -> Intent:
        vm = self.vm(name)
        intent = self.set(name, state=VmState.STOPPED.value)
        self.vms.freeze(vm, False)
        self.vms.power(vm, False)
        return self._done(intent)

    def start(self, name: str) -> Intent:
        self.vms.power(self.vm(name), True)
        intent = self.set(name, state=None)
        if intent.vrouters:
            self.vms.route(intent)
        return self._done(intent)

    def frozen(self, name: str) -> bool:
        return self.vms.frozen(name)

    # -- moving ---------------------------------------------------------------------------------
    def migrate(self, name: str, to: str, *, live: bool = True) -> migration.Report:
        """Move a VM to host `to`, keeping its addresses and everything inside it
        (hypervisor/migration.py). `live=False` is the naive move: the intent changes, the
        ports follow, nothing is prepared (the bench's baseline)."""
        return migration.migrate(self, name, to, live=live)

    def move(self, name: str, to: str) -> Intent:
        """A VR moved by live migration (the name `tenet vr move` has always had)."""
        migration.migrate(self, name, to)
        return self.intent()


class Routers:
    """The virtual routers' view of a hypervisor: `create` takes the VR's tenant, as
    `tenet vr create` does; every other primitive is the hypervisor's own."""

    def __init__(self, hv: Hypervisor) -> None:
        self.hv = hv

    def create(self, name: str, host: str, tenant: str, nics: list[dict]) -> Intent:
        return self.hv.create(name, host, nics, tenant=tenant, router=True)

    def __getattr__(self, op: str):
        return getattr(self.hv, op)
