"""An in-memory kernel with the driver's protocol, for unit tests of reconciliation.

It models what matters for convergence: deleting a link takes its veth peer, its FDB entries
and its bridge memberships with it; adding what exists is a no-op.
"""
from __future__ import annotations

from dataclasses import replace

from tenet.agent import translation
from tenet.agent.kernel.state import KernelState, Link
from tenet.agent.reconcile import (
    AddAddress,
    DelAddress,
    AddBridgeFdb,
    AddLink,
    AddVxlanFdb,
    Attach,
    ClearShaper,
    DelMacClass,
    DelUplinkClass,
    DelBridgeFdb,
    DelLink,
    DelVxlanFdb,
    Op,
    SetRuleset,
    SetMacClass,
    SetUplinkClass,
    SetShaper,
)


class FakeKernel:
    def __init__(self, ports: frozenset[str] = frozenset(), mtu: int = 1550) -> None:
        self.state = KernelState.empty()
        self._ports = set(ports)
        self.mtu = mtu
        self.applied: list[Op] = []

    def ports(self) -> frozenset[str]:
        return frozenset(self._ports)

    def port_macs(self) -> dict[str, str]:
        return {p: "02:fe:00:00:00:%02x" % i for i, p in enumerate(sorted(self._ports))}

    def uplink_mtu(self, uplink: str) -> int:
        return self.mtu

    def observe(self, sections: frozenset[str] | None = None) -> KernelState:
        return self.state  # everything, always: a superset of any section asked for

    def _links(self) -> dict[str, Link]:
        return {l.name: l for l in self.state.links}

    def apply(self, op: Op) -> None:
        self.applied.append(op)
        s = self.state
        links = self._links()
        if isinstance(op, AddLink):
            new = [op.link]
            if op.link.kind == "veth":
                new.append(Link(op.link.peer, "veth", peer=op.link.name, mtu=op.link.mtu))
            for l in new:
                links.setdefault(l.name, l)
            self.state = replace(s, links=frozenset(links.values()))
        elif isinstance(op, DelLink):
            gone = {op.name}
            if op.name in links and links[op.name].kind == "veth":
                gone.add(links[op.name].peer)
            self.state = replace(
                s,
                links=frozenset(l for n, l in links.items() if n not in gone),
                bridge_fdb=frozenset(e for e in s.bridge_fdb if e.port not in gone),
                vxlan_fdb=frozenset(e for e in s.vxlan_fdb if e.dev not in gone),
                attachments=frozenset(a for a in s.attachments if a[1] not in gone),
                addresses=frozenset(a for a in s.addresses if a.dev not in gone),
            )
        elif isinstance(op, AddAddress):
            if op.address.dev in links:
                self.state = replace(s, addresses=s.addresses | {op.address})
        elif isinstance(op, DelAddress):
            self.state = replace(s, addresses=s.addresses - {op.address})
        elif isinstance(op, Attach):
            if op.port in self._ports:
                rest = {a for a in s.attachments if a[0] != op.port}
                if op.bridge:
                    rest.add((op.port, op.bridge))
                self.state = replace(s, attachments=frozenset(rest))
        elif isinstance(op, AddBridgeFdb):
            if op.entry.port in links:
                self.state = replace(s, bridge_fdb=s.bridge_fdb | {op.entry})
        elif isinstance(op, DelBridgeFdb):
            self.state = replace(s, bridge_fdb=s.bridge_fdb - {op.entry})
        elif isinstance(op, AddVxlanFdb):
            if op.entry.dev in links:
                self.state = replace(s, vxlan_fdb=s.vxlan_fdb | {op.entry})
        elif isinstance(op, DelVxlanFdb):
            self.state = replace(s, vxlan_fdb=s.vxlan_fdb - {op.entry})
        elif isinstance(op, SetRuleset):
            self.state = replace(s, nft_hash=translation.digest_of(op.text))
        elif isinstance(op, SetShaper):
            if op.shaper.port in self._ports or op.shaper.port in links:
                rest = {x for x in s.shapers if x.port != op.shaper.port}
                self.state = replace(s, shapers=frozenset(rest | {op.shaper}))
        elif isinstance(op, SetMacClass):
            rest = {c for c in s.mac_classes if (c.port, c.minor) != (op.cls.port, op.cls.minor)}
            self.state = replace(s, mac_classes=frozenset(rest | {op.cls}))
        elif isinstance(op, SetUplinkClass):
            rest = {u for u in s.uplink_classes if (u.dev, u.minor) != (op.cls.dev, op.cls.minor)}
            self.state = replace(s, uplink_classes=frozenset(rest | {op.cls}))
        elif isinstance(op, DelUplinkClass):
            self.state = replace(s, uplink_classes=frozenset(
                u for u in s.uplink_classes if u.dev != op.dev or op.minor not in (0, u.minor)))
        elif isinstance(op, DelMacClass):
            self.state = replace(s, mac_classes=frozenset(c for c in s.mac_classes if (c.port, c.minor) != (op.port, op.minor)))
        elif isinstance(op, ClearShaper):
            self.state = replace(s, shapers=frozenset(x for x in s.shapers if x.port != op.port))
