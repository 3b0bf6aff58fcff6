"""What a hypervisor does to VMs on the machines it runs, named once (the lab's namespaces
are one implementation: lab/vms.py). The manager decides; a backend only does.

A VM here is the intent's `Vm` (a virtual router is one with `router` set): its host, its
NICs in order. NIC i is `eth<i>` inside the VM; its host side is `port_name(vm, i)`.
"""
from __future__ import annotations

from typing import Protocol

from tenet.model.tenancy import Intent, Vm


class Backend(Protocol):
    def build(self, intent: Intent, vm: Vm) -> None:
        """The VM and its NICs, wired to its host as the intent says; nothing if it fails."""

    def remove(self, vm: Vm) -> None:
        """The VM and everything built for it (its NICs' host sides go with it)."""

    def plug(self, intent: Intent, vm: Vm, i: int) -> None:
        """NIC i, wired to its host (hot-plug)."""

    def unplug(self, vm: Vm, i: int) -> None:
        """NIC i gone, and its host side with it."""

    def move_port(self, intent: Intent, vm: Vm, i: int, to: str) -> None:
        """NIC i's host side handed from `vm.host` to host `to`; the VM keeps its interface."""

    def serving(self, vm: Vm) -> bool:
        """Every statically joined NIC's host side is taken by its host's NVE (in a bridge)."""

    def rediscover(self, vm: Vm) -> None:
        """Tell the VM's TESs they run behind another NVE now (discover again at once)."""

    def announce(self, vm: Vm) -> None:
        """The VM's presence told to its network from where it now is (gratuitous ARP, RARP)."""

    def power(self, vm: Vm, on: bool) -> None:
        """Its NICs up or down, as a VM powering on or off."""

    def freeze(self, vm: Vm, frozen: bool) -> None:
        """Its processes frozen or thawed; nothing else changes."""

    def frozen(self, name: str) -> bool: ...

    def route(self, intent: Intent) -> None:
        """Virtual routers' routes over their links (compute/overlay.py), put in place."""

    def renumber(self, old: Vm, new: Vm) -> None:
        """A VR's NICs from `old`'s numbering to `new`'s (same order, some gone)."""
