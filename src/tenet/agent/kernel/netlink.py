"""Linux dataplane driver over one persistent pyroute2 socket in the agent's namespace.

Observes only what the agent owns (links named tn*, their FDB entries, VM ports' bridge
membership) and applies reconcile ops idempotently: adding what exists and deleting what is
gone are no-ops, so a crash between two ops is repaired by the next pass.
"""
from __future__ import annotations

import errno
import socket
from ipaddress import ip_address
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from tenet.agent import translation as tr
from tenet.ethernet import hwaddr, mtu
from tenet.agent.desired import FLOOD
from tenet.agent.kernel import linkdump, nftables
from tenet.agent.kernel.state import OWN_PREFIX, Address, BridgeFdb, KernelState, Link, MacClass, Shaper, UplinkClass, Vxlan, VxlanFdb
from tenet.compute.qos import DEFAULT, PARENT, UPLINK_MAJOR
from tenet.model.layers import CARRIER_PORT
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
    SetShaper,
    SetUplinkClass,
)

NTF_SELF = 0x02
NTF_MASTER = 0x04
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
VM_PORT_PREFIX = "tp"
SWITCH_PORT_PREFIX = tr.SWITCH_PORT_PREFIX  # an access switch's port toward a host: many MACs, many VNs
SHAPED = (VM_PORT_PREFIX, "tna", tr.STAGE_IN)  # VM ports, L3 access tunnels, and upstream stages
SHAPER_HANDLE = 0x7E010000  # "7e01:": the root qdisc handle that marks a shaper as ours
SHAPER_LATENCY = "20ms"  # queueing a token bucket allows before it drops
MAC_CLASS_MAJOR = int(tr.MAC_CLASS_MAJOR, 16)  # an access switch port's HTB root; a MAC's class is 7e02:<minor>
UP_CLASS_MAJOR = int(tr.UP_CLASS_MAJOR, 16)  # the same on a switch port's upstream stage (tnu…)


def class_major(port: str) -> int:
    """A MAC's HTB classes: toward it on the switch port, from it on the port's stage."""
    return UP_CLASS_MAJOR if port.startswith(tr.STAGE_IN) else MAC_CLASS_MAJOR
LINK_QUANTUM = 8 * 1514  # one quantum for every class: spare capacity is shared evenly, not by rate


def ipv4_address(ifname: str) -> str | None:
    """The first IPv4 address of an interface with its prefix length ("198.18.1.10/24"), or
    None when it has none or does not exist. A socket of its own: any thread may ask."""
    with IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=ifname)
        if not idx:
            return None
        for a in ipr.get_addr(family=socket.AF_INET, index=idx[0]):
            return f'{a.get_attr("IFA_ADDRESS")}/{a["prefixlen"]}'
    return None


class LinuxKernel:
    def __init__(self, uplink: str = "up0") -> None:
        self.ipr = IPRoute()
        self.uplink = uplink

    def close(self) -> None:
        self.ipr.close()

    # -- observation -------------------------------------------------------------------
    def _links(self) -> dict[int, linkdump.LinkInfo]:
        return {l.index: l for l in linkdump.dump()}

    def ports(self) -> frozenset[str]:
        return frozenset(self.port_macs())

    def port_macs(self) -> dict[str, str]:
        """VM ports (created by the hypervisor) and the NVE's MAC on each: names from one
        if_nameindex call and a MAC ioctl per port — pyroute2's decoding of a full link dump
        was the agent's largest CPU cost under churn."""
        return {n: mac for _, n in socket.if_nameindex()
                if n.startswith((VM_PORT_PREFIX, SWITCH_PORT_PREFIX)) and (mac := hwaddr(n))}

    def uplink_mtu(self, uplink: str) -> int:
        return mtu(uplink) or 1500  # an ioctl: decoding even one link message cost a sixth of a pass

    def observe(self, sections: frozenset[str] | None = None) -> KernelState:
        """What the kernel holds of ours; only `sections` (reconcile.SECTIONS) when given,
        the rest left empty."""
        want = lambda section: sections is None or section in sections  # noqa: E731
        links = self._links() if want("links") else {}  # the dump only when needed: its decoding is costly
        name = {i: l.name for i, l in links.items()} if links else dict(socket.if_nameindex())
        own: set[Link] = set()
        attachments: set[tuple[str, str]] = set()
        for l in links.values():
            n = l.name
            master = name.get(l.master, "")
            if n.startswith(VM_PORT_PREFIX) and master.startswith(OWN_PREFIX):
                attachments.add((n, master))
            if not n.startswith(OWN_PREFIX):
                continue
            if l.kind == "vxlan" and l.vxlan is not None:
                v = l.vxlan
                vx = Vxlan(vni=v.vni, local=v.local, group=v.group, port=v.port, ttl=v.ttl, dev=name.get(v.link, ""))
                own.add(Link(n, "vxlan", master=master, vxlan=vx, mtu=l.mtu))
            elif l.kind == "veth":
                peer = links.get(l.link)
                peer_mac = peer.address if n.startswith(CARRIER_PORT) and peer else ""
                own.add(Link(n, "veth", master=master, peer=peer.name if peer else "", mtu=l.mtu, peer_mac=peer_mac))
            else:
                own.add(Link(n, l.kind, master=master))
        bfdb: set[BridgeFdb] = set()
        vfdb: set[VxlanFdb] = set()
        for f in self.ipr.fdb("dump") if want("fdb") else ():
            dev = name.get(f["ifindex"], "")
            if not dev.startswith(OWN_PREFIX):
                continue
            mac = f.get("NDA_LLADDR")
            dst = f.get("NDA_DST")  # only VXLAN devices' entries have one
            if f.get("NDA_MASTER") and f["state"] & NUD_NOARP and not f["state"] & NUD_PERMANENT:
                bfdb.add(BridgeFdb(dev, mac))
            elif dst and not (mac == FLOOD and ip_address(dst).is_multicast):  # the device's own group entry
                vfdb.add(VxlanFdb(dev, mac, dst))
        return KernelState(
            links=frozenset(own),
            attachments=frozenset(attachments),
            bridge_fdb=frozenset(bfdb),
            vxlan_fdb=frozenset(vfdb),
            nft_hash=nftables.observe_digest() if want("nft") else "",
            shapers=self._shapers(name) if want("shapers") else frozenset(),
            mac_classes=self._mac_classes(name) if want("mac_classes") else frozenset(),
            uplink_classes=self._uplink_classes(next((i for i, n in name.items() if n == self.uplink), None))
            if want("uplink_classes") else frozenset(),
            addresses=frozenset(
                Address(name[a["index"]], f'{a.get_attr("IFA_ADDRESS")}/{a["prefixlen"]}')
                for a in self.ipr.get_addr(family=socket.AF_INET)
                if name.get(a["index"], "").startswith(OWN_PREFIX)) if want("addresses") else frozenset(),
        )

    def _uplink_classes(self, idx: int | None) -> frozenset[UplinkClass]:
        out = set()
        for c in self.ipr.get_classes(index=idx) if idx is not None else ():
            if c["handle"] >> 16 == UPLINK_MAJOR and c.get_attr("TCA_KIND") == "htb":
                parms = c.get_nested("TCA_OPTIONS", "TCA_HTB_PARMS")
                if parms:
                    out.add(UplinkClass(self.uplink, c["handle"] & 0xFFFF, parms["rate"] * 8, parms["ceil"] * 8))
        return frozenset(out)

    def _mac_classes(self, name: dict[int, str]) -> frozenset[MacClass]:
        out = set()
        for idx, port in name.items():
            if not port.startswith((SWITCH_PORT_PREFIX, tr.STAGE_IN)):
                continue
            for c in self.ipr.get_classes(index=idx):
                if c["handle"] >> 16 == class_major(port) and c.get_attr("TCA_KIND") == "htb":
                    parms = c.get_nested("TCA_OPTIONS", "TCA_HTB_PARMS")
                    if parms:
                        out.add(MacClass(port, c["handle"] & 0xFFFF, parms["rate"] * 8))
        return frozenset(out)

    def _shapers(self, name: dict[int, str]) -> frozenset[Shaper]:
        out = set()
        for q in self.ipr.get_qdiscs():
            port = name.get(q["index"], "")
            if q["handle"] != SHAPER_HANDLE or q.get_attr("TCA_KIND") != "tbf" or not port.startswith(SHAPED):
                continue
            parms = q.get_nested("TCA_OPTIONS", "TCA_TBF_PARMS")
            if parms:
                out.add(Shaper(port, parms["rate"] * 8))
        return frozenset(out)

    # -- effects -----------------------------------------------------------------------
    def _idx(self, name: str) -> int | None:
        """One ioctl in our own namespace; pyroute2's link_lookup dumps and decodes every link."""
        try:
            return socket.if_nametoindex(name)
        except OSError:
            return None

    def apply(self, op: Op) -> None:
        try:
            self._apply(op)
        except NetlinkError as e:
            if e.code not in (errno.EEXIST, errno.ENOENT, errno.ENODEV):
                raise

    def _apply(self, op: Op) -> None:
        ipr = self.ipr
        if isinstance(op, AddLink):
            self._add_link(op.link)
        elif isinstance(op, DelLink):
            idx = self._idx(op.name)
            if idx is not None:
                ipr.link("del", index=idx)
        elif isinstance(op, Attach):
            idx = self._idx(op.port)
            if idx is None:
                return
            master = self._idx(op.bridge) if op.bridge else 0
            ipr.link("set", index=idx, master=master or 0, state="up")
        elif isinstance(op, AddBridgeFdb):
            idx = self._idx(op.entry.port)
            if idx is not None:
                ipr.fdb("replace", ifindex=idx, lladdr=op.entry.mac, flags=NTF_MASTER, state=NUD_NOARP)
        elif isinstance(op, DelBridgeFdb):
            idx = self._idx(op.entry.port)
            if idx is not None:
                ipr.fdb("del", ifindex=idx, lladdr=op.entry.mac, flags=NTF_MASTER)
        elif isinstance(op, AddVxlanFdb):
            idx = self._idx(op.entry.dev)
            if idx is not None:
                verb = "append" if op.entry.mac == FLOOD else "replace"
                ipr.fdb(verb, ifindex=idx, lladdr=op.entry.mac, dst=op.entry.dst, flags=NTF_SELF, state=NUD_PERMANENT | NUD_NOARP)
        elif isinstance(op, DelVxlanFdb):
            idx = self._idx(op.entry.dev)
            if idx is not None:
                ipr.fdb("del", ifindex=idx, lladdr=op.entry.mac, dst=op.entry.dst, flags=NTF_SELF)
        elif isinstance(op, (AddAddress, DelAddress)):
            idx = self._idx(op.address.dev)
            if idx is not None:
                ip, plen = op.address.cidr.split("/")
                ipr.addr("add" if isinstance(op, AddAddress) else "del", index=idx, address=ip, prefixlen=int(plen))
        elif isinstance(op, SetRuleset):
            nftables.apply(op.text)
        elif isinstance(op, SetShaper):
            idx = self._idx(op.shaper.port)
            if idx is not None:
                rate = op.shaper.rate_bps
                burst = max(rate // 8 // 100, 16 * 1514)  # 10 ms of tokens, at least a few full frames
                ipr.tc("replace", "tbf", idx, SHAPER_HANDLE, rate=f"{rate}bit", burst=burst, latency=SHAPER_LATENCY)
        elif isinstance(op, SetMacClass):
            idx = self._idx(op.cls.port)
            if idx is not None:
                root = class_major(op.cls.port) << 16
                if not any(q["handle"] == root for q in self.ipr.get_qdiscs(index=idx)):
                    ipr.tc("add", "htb", idx, root, default=0)  # unclassified frames pass unshaped
                rate = op.cls.rate_bps
                burst = max(rate // 8 // 100, 16 * 1514)
                ipr.tc("replace-class", "htb", idx, root | op.cls.minor, parent=root, rate=f"{rate}bit",
                       ceil=f"{rate}bit", burst=burst, prio=0)
        elif isinstance(op, SetUplinkClass):
            self._set_uplink_class(op.cls)
        elif isinstance(op, DelUplinkClass):
            idx = self._idx(op.dev)
            if idx is not None:
                root = UPLINK_MAJOR << 16
                if op.minor:
                    ipr.tc("del-class", index=idx, handle=root | op.minor, parent=root)
                else:
                    ipr.tc("del", index=idx, handle=root, parent=0xFFFFFFFF)
        elif isinstance(op, DelMacClass):
            idx = self._idx(op.port)
            if idx is not None:
                root = class_major(op.port) << 16
                ipr.tc("del-class", index=idx, handle=root | op.minor, parent=root)
        elif isinstance(op, ClearShaper):
            idx = self._idx(op.port)
            if idx is not None:
                ipr.tc("del", index=idx, handle=SHAPER_HANDLE, parent=0xFFFFFFFF)

    def _set_uplink_class(self, c: UplinkClass) -> None:
        """Create the class, or change it: the root is added once and never replaced, so other
        classes' queues (other VNs' traffic) are never touched.

        A new ceil is changed in place. A new rate (guarantee) re-creates this one leaf class:
        HTB keeps a class's token debt across a rate change — up to a minute of it, run up by
        one 64 KB GSO frame sent in its own right at a token rate — so a raised guarantee would
        otherwise take effect only a minute later. Frames queued in the link's class go with it;
        while it is gone, the link's frames fall to the default class."""
        idx = self._idx(c.dev)
        if idx is None:
            return
        root = UPLINK_MAJOR << 16
        if not any(q["handle"] == root for q in self.ipr.get_qdiscs(index=idx)):
            self.ipr.tc("add", "htb", idx, root, default=DEFAULT)
        if c.minor not in (PARENT, DEFAULT):
            for old in self.ipr.get_classes(index=idx):
                parms = old.get_nested("TCA_OPTIONS", "TCA_HTB_PARMS") if old["handle"] == root | c.minor else None
                if parms and parms["rate"] * 8 != c.rate_bps:
                    self.ipr.tc("del-class", index=idx, handle=root | c.minor, parent=root | PARENT)
        # 10 ms at the rate and at the ceiling, a few frames at least (the kernel keeps bursts
        # as time at their rate, in 32 bits: a ceiling's burst at a token rate would overflow)
        burst, cburst = (max(r // 8 // 100, 16 * 1514) for r in (c.rate_bps, c.ceil_bps))
        self.ipr.tc("replace-class", "htb", idx, root | c.minor, parent=root if c.minor == PARENT else root | PARENT,
                    rate=f"{c.rate_bps}bit", ceil=f"{c.ceil_bps}bit", burst=burst, cburst=cburst,
                    quantum=LINK_QUANTUM, prio=0)

    def _add_link(self, l: Link) -> None:
        ipr = self.ipr
        if self._idx(l.name) is None:
            if l.kind == "bridge":
                ipr.link("add", ifname=l.name, kind="bridge", br_mcast_snooping=0)
            elif l.kind == "vxlan":
                assert l.vxlan is not None
                kw = dict(vxlan_group=l.vxlan.group) if l.vxlan.group else {}
                if l.vxlan.dev:
                    kw["vxlan_link"] = self._idx(l.vxlan.dev)
                ipr.link(
                    "add",
                    ifname=l.name,
                    kind="vxlan",
                    vxlan_id=l.vxlan.vni,
                    vxlan_local=l.vxlan.local,
                    vxlan_port=l.vxlan.port,
                    vxlan_ttl=l.vxlan.ttl,
                    vxlan_learning=0,
                    **kw,
                )
            elif l.kind == "veth":
                peer = {"ifname": l.peer, **({"address": l.peer_mac} if l.peer_mac else {})}
                ipr.link("add", ifname=l.name, kind="veth", peer=peer)
        quiet_ipv6(l.name)
        idx = self._idx(l.name)
        kw = {"mtu": l.mtu} if l.mtu else {}
        if l.master:
            kw["master"] = self._idx(l.master)
        ipr.link("set", index=idx, state="up", **kw)
        if l.kind == "veth":
            quiet_ipv6(l.peer)
            ipr.link("set", index=self._idx(l.peer), state="up", **({"mtu": l.mtu} if l.mtu else {}))
            if not l.master:
                return
            if l.name.startswith((tr.ACCESS_BRIDGE_SIDE, CARRIER_PORT, tr.STAGE_OUT)):  # ways into the VN from outside: floods welcome
                ipr.brport("set", index=idx, learning=0)
            else:
                ipr.brport("set", index=idx, learning=0, unicast_flood=0, mcast_flood=0, bcast_flood=0)
        elif l.kind == "vxlan" and l.master:
            ipr.brport("set", index=idx, learning=0)


def quiet_ipv6(ifname: str) -> None:
    """Our links carry tenant frames only: the host must not speak IPv6 (ND/MLD) into a VN."""
    p = Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6")
    if p.exists():
        p.write_text("1")
