"""A migrated VM announced from where it now is, as hypervisors do after a live migration:
a RARP and a gratuitous ARP per NIC, sent out of the VM's own interface (so with its MAC,
through its new host). One call is one round; the migration sends a few, apart, as QEMU's
announce does (in case a first frame is lost)."""
from __future__ import annotations

import socket

from tenet.model.tenancy import Vm
from tenet.store.netns import inside
from tenet.wire.arp import gratuitous, rarp_announce


def frames(vm: Vm, i: int) -> list[bytes]:
    nic = vm.nics[i]
    out = [rarp_announce(nic.mac)]
    if nic.ip is not None:
        out.append(gratuitous(nic.mac, nic.ip.ip))
    return out


def announce(netns: str, vm: Vm) -> None:
    socks = []
    try:
        with inside(netns):
            for i in range(len(vm.nics)):
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                socks.append(s)
                s.bind((f"eth{i}", 0))
        for i, s in enumerate(socks):
            for f in frames(vm, i):
                s.send(f)
    finally:
        for s in socks:
            s.close()
