"""Where tenet's state lives and who carries a change out: a deployment's store, or a lab.

The CLI and the REST API both reach the system through a Site, so neither builds a store URL
or a key of its own. A deployment's change is a compare-and-swap write to its store; its
hypervisors follow the intent themselves. A lab is also the hypervisor of its VMs: it writes,
then builds what the change needs (namespaces, RADIUS users, TESs) and waits for the agents.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenet.store.apply import ApplyPlan, apply, plan_apply
from tenet.store.base import Store
from tenet.store.open import open_store

Progress = Callable[[str], None]


class SiteError(ValueError):
    """The site named cannot be reached (no lab of that name, both or neither given)."""


def _quiet(_: str) -> None:
    pass


@dataclass
class Site:
    store_url: str
    lab: str | None = None  # the lab's name; None: a deployment
    progress: Progress = _quiet
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one write at a time per process

    @classmethod
    def open(cls, lab: str | None = None, store_url: str | None = None, progress: Progress = _quiet) -> "Site":
        """--store URL (a deployment), else --lab NAME, else the one lab that is up."""
        from tenet.lab.record import Record, running_labs

        if lab and store_url:
            raise SiteError("give --lab or --store, not both")
        if store_url:
            return cls(store_url, None, progress)
        if not lab:
            labs = running_labs()
            if len(labs) != 1:
                raise SiteError("no lab is up" if not labs else f"several labs are up ({', '.join(labs)}): pass --lab NAME")
            lab = labs[0]
        try:
            return cls(Record.load(lab).store_url, lab, progress)
        except LookupError as e:
            raise SiteError(str(e)) from None

    def store(self) -> Store:
        return open_store(self.store_url)

    def plan(self, doc: Any, source: str = "") -> ApplyPlan:
        """Validate a whole document (or the tenancy alone) against the store: the diff to write."""
        store = self.store()
        try:
            return plan_apply(store, doc, source)
        finally:
            store.close()

    def write(self, plan: ApplyPlan, timeout: float = 60.0) -> int | None:
        """Write a plan (refused if the store changed since it was read); a lab follows it and
        returns once its agents have. The revision written, None if there was nothing to."""
        with self.lock:
            if self.lab is not None:
                from tenet.lab.lab import Lab

                return Lab.running(self.lab, self.progress).apply(plan, timeout)
            store = self.store()
            try:
                return apply(store, plan)
            finally:
                store.close()

    def wait_applied(self, revision: int | None = None, timeout: float = 60.0) -> tuple[str, ...]:
        """Return once every host applied what was written up to `revision` (None: up to now);
        the hosts. NotApplied names who has not, after `timeout`."""
        from tenet.store.applied import wait_applied

        store = self.store()
        try:
            return wait_applied(store, revision or store.revision(), timeout=timeout)
        finally:
            store.close()

    def hypervisor(self):
        """The VMs' lifecycle (hypervisor/manager.py): a lab's namespaces; a deployment's
        hypervisors are not driven from here (SiteError)."""
        if self.lab is None:
            raise SiteError("VM primitives drive a hypervisor: this deployment's follow the intent on their own "
                            "(edit the VM instead)")
        from tenet.lab.vms import lab_hypervisor

        return lab_hypervisor(self.lab, self.progress)
