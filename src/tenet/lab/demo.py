"""What `make demo` claims, checked: the code examples/demo.py runs and tests/lab/test_demo.py
runs too, so CI fails whenever the demo would.

Two claims. The tables: every static VM NIC of a MAC-forwarded VN (not layered) is reached
unchanged from its own host, by L2 translation from a host on the same physical network, and
by VXLAN encapsulation from a host behind a router (seed 002, FIGS. 7A/7B). The packets: every
NIC answers every NIC of its VN and no echo crosses from one VN to another (lab/reach.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from tenet.compute.tables import Function, HostTables
from tenet.lab.reach import Reachability, measure
from tenet.model.tenancy import Intent, Join
from tenet.store import published
from tenet.store.open import open_store


@dataclass(frozen=True)
class DemoResult:
    tables: dict[str, HostTables]
    table_failures: tuple[str, ...]
    reach: Reachability

    @property
    def failures(self) -> list[str]:
        return [*self.table_failures, *self.reach.failures]


def expected_function(intent: Intent, at_host: str, vm_host: str) -> Function:
    if at_host == vm_host:
        return Function.NO_MODIFICATION
    network = {h.name: h.network for h in intent.fabric.hosts}
    return Function.TRANSLATE_L2 if network[at_host] == network[vm_host] else Function.ENCAPSULATE


def table_failures(intent: Intent, tables: dict[str, HostTables]) -> list[str]:
    """Every host's row for every static VM NIC of a plain MAC-forwarded VN it implements."""
    out = []
    for vm in intent.vms:
        for nic in vm.nics:
            vn = intent.vn(nic.network)
            if nic.join is not Join.STATIC or vn.forwarding != "mac" or vn.over:
                continue
            for host, t in sorted(tables.items()):
                table = t.vn(vn.name)
                if table is None:
                    continue
                rows = [e for e in table.entries if e.destination == nic.mac and e.vm == vm.name]
                want = expected_function(intent, host, vm.host)
                if [e.function for e in rows] != [want]:
                    got = ", ".join(e.function.value for e in rows) or "no row"
                    out.append(f"{host} · {vn.name}: {vm.name} should be '{want.value}', is {got}")
    return out


def read_tables(store_url: str, intent: Intent) -> dict[str, HostTables]:
    store = open_store(store_url)
    try:
        return {h.name: t for h in intent.fabric.hosts if (t := published.read(store, h.name))}
    finally:
        store.close()


def check(lab) -> DemoResult:
    """The demo's checks on a lab that is up: tables first (cheap), then every NIC pair."""
    tables = read_tables(lab.store_url, lab.intent)
    return DemoResult(tables, tuple(table_failures(lab.intent, tables)), measure(lab, lab.intent))
