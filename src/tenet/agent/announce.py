"""A VM's external MAC announced on the physical network when its port arrives here.

Peers on the same physical network reach a VM by its external MAC through the physical
switches, which learn one port per MAC from the frames they see. A VM's own announcement (a
broadcast) leaves this host encapsulated, so the switches never see its external MAC from
here until the VM sends a unicast to a translated peer — and after a migration a silent VM
would stay unreachable until their FDB ages out (300 s). So the NVE sends, from the uplink,
a RARP wearing each arriving port's external MACs (as a hypervisor announces a migrated VM's
MAC): the switches learn the new port at once.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Collection

from tenet.compute.tables import Function, HostTables
from tenet.wire.arp import rarp_announce

log = logging.getLogger("tenet.agent")


def external_macs(tables: HostTables, ports: Collection[str]) -> list[str]:
    """The external MACs this host's translated peers know the VMs on `ports` by. Pure."""
    out = []
    for t in tables.vns:
        macs = {e.destination for e in t.rows(Function.NO_MODIFICATION) if e.port in ports}
        out += [r.arrival for r in t.reverse if r.local and r.internal in macs]
    return out


class Announcer:
    """One raw socket on the uplink, opened at the first announcement."""

    def __init__(self, uplink: str) -> None:
        self.uplink = uplink
        self.sock: socket.socket | None = None

    def announce(self, macs: list[str]) -> None:
        if not macs:
            return
        try:
            if self.sock is None:
                self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                self.sock.bind((self.uplink, 0))
            for mac in macs:
                self.sock.send(rarp_announce(mac))
        except OSError as e:  # the switches then learn from the VM's next unicast
            log.warning("announcing %s on %s: %s", ", ".join(macs), self.uplink, e)
            self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
