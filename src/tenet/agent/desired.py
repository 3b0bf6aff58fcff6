"""Desired kernel state of one host, derived from its tables alone. Pure."""
from __future__ import annotations

from dataclasses import replace

from tenet.agent import translation as tr
from tenet.agent.kernel.state import Address, BridgeFdb, KernelState, Link, MacClass, Shaper, UplinkClass, Vxlan, VxlanFdb
from tenet.compute.qos import DEFAULT, PARENT
from tenet.compute.tables import Function, HostTables, VnTable
from tenet.model.layers import VXLAN_OVERHEAD

FLOOD = "00:00:00:00:00:00"


def settled(tables: HostTables, present_ports: frozenset[str]) -> tuple[HostTables, frozenset[str]]:
    """The tables with each live-migrating NIC at one place (compute/addressing.py
    `moving_rows` lists it at both its hosts): where its port is, the local row and nothing
    else; where it is not (yet, or any more), only the rows that reach the other place. Also
    the ports so expected: absent, but not missing (the agent looks for them often)."""
    vns, expected = [], set()
    for t in tables.vns:
        seen: dict[str, int] = {}
        for e in t.entries:
            seen[e.destination] = seen.get(e.destination, 0) + 1
        if len(seen) == len(t.entries):
            vns.append(t)
            continue
        moving = [e for e in t.entries if e.function is Function.NO_MODIFICATION and seen[e.destination] > 1]
        here = {e.destination for e in moving if e.port in present_ports}
        expected |= {e.port for e in moving if e.port not in present_ports}
        vns.append(replace(t, entries=tuple(
            e for e in t.entries if seen[e.destination] == 1
            or (e.destination in here) == (e.function is Function.NO_MODIFICATION))))
    return replace(tables, vns=tuple(vns)), frozenset(expected)


def at_both(t: VnTable) -> frozenset[str]:
    """MACs reached at two hosts (a live migration's, here at neither): a VXLAN FDB holds one
    remote per unicast MAC, so with no entry of their own their frames take the VN's
    broadcast path (its group, or replication to every host of the VN) and only the host
    with the port delivers them (the other has them on its VXLAN port: no hairpin)."""
    rows = t.rows(Function.ENCAPSULATE)
    if len({e.destination for e in rows}) == len(rows):
        return frozenset()
    seen: set[str] = set()
    return frozenset(e.destination for e in rows if e.destination in seen or seen.add(e.destination))


def desired_state(tables: HostTables, present_ports: frozenset[str], uplink_mtu: int) -> KernelState:
    """What the kernel should hold. VM ports are created by the hypervisor, not by us: a port
    the tables name but the kernel lacks is reported missing, never invented."""
    tables, expected = settled(tables, present_ports)
    links: set[Link] = set()
    attachments: set[tuple[str, str]] = set()
    bfdb: set[BridgeFdb] = set()
    vfdb: set[VxlanFdb] = set()
    missing: set[str] = set()
    tunnels = {tun.port for t in tables.vns for tun in t.tunnels}
    carriers = {t.carrier.port: t.carrier for t in tables.vns if t.carrier}
    addresses = set()
    staged = tr.stages(tables, present_ports | tunnels)
    for c in carriers.values():  # the NVE's own port on a lower VN (model/layers.py)
        mtu = uplink_mtu - VXLAN_OVERHEAD * (c.layer + 1)
        links.add(Link(c.port, "veth", master=tr.bridge_name(c.vnid), peer=c.dev, mtu=mtu, peer_mac=c.mac))
        links.add(Link(c.dev, "veth", peer=c.port, mtu=mtu))
        addresses.add(Address(c.dev, c.ip))
    for t in tables.vns:
        routed = t.forwarding == "ip"
        for tun in t.tunnels:  # an L3-attached TES's port: we create it, like the hypervisor a veth
            links.add(Link(tun.port, "vxlan", master="" if routed else tr.bridge_name(t.vnid),
                           vxlan=Vxlan(tun.vni, tables.underlay_ip, tun.remote, port=tun.udp_port,
                                             dev=tables.uplink),
                           mtu=uplink_mtu - VXLAN_OVERHEAD))
        if routed:
            vx = tr.vxlan_name(t.vnid)
            links.add(Link(vx, "vxlan", vxlan=Vxlan(t.vnid, tables.underlay_ip, ""), mtu=uplink_mtu - VXLAN_OVERHEAD))
            for r in t.routes:
                if r.function == Function.ENCAPSULATE.value:
                    vfdb.add(VxlanFdb(vx, r.mac, r.address))
                elif r.port and r.port not in present_ports | tunnels:
                    missing.add(r.port)
            continue
        br, vx = tr.bridge_name(t.vnid), tr.vxlan_name(t.vnid)
        mtu = uplink_mtu - VXLAN_OVERHEAD * (t.layer + 1)
        links.add(Link(br, "bridge"))
        if t.carrier:  # layered: sent from this host's address on the VN beneath
            vxlan = Vxlan(t.vnid, t.carrier.ip.split("/")[0], "", dev=t.carrier.dev)
        else:
            vxlan = Vxlan(t.vnid, tables.underlay_ip, t.group, dev=tables.uplink if t.group else "")
        links.add(Link(vx, "vxlan", master=br, vxlan=vxlan, mtu=mtu))
        both = at_both(t)
        for e in t.entries:
            if e.function is Function.NO_MODIFICATION and e.port.startswith(tr.SWITCH_PORT_PREFIX):
                # a MAC on an access switch's port: nftables steers it into the VN through a veth
                inside, outside = tr.access_names(t.vnid)
                links.add(Link(inside, "veth", master=br, peer=outside, mtu=mtu))
                links.add(Link(outside, "veth", peer=inside, mtu=mtu))
                bfdb.add(BridgeFdb(inside, e.destination))
                if e.port not in present_ports:
                    missing.add(e.port)
            elif e.function is Function.NO_MODIFICATION:
                if e.port in tunnels or e.port in carriers:
                    bfdb.add(BridgeFdb(e.port, e.destination))  # learning is off on the ports we create
                elif e.port in present_ports:
                    attachments.add((e.port, br))
                else:
                    missing.add(e.port)
            elif e.function is Function.ENCAPSULATE:
                bfdb.add(BridgeFdb(vx, e.destination))
                if e.destination not in both:
                    vfdb.add(VxlanFdb(vx, e.destination, e.address))
            elif e.function is Function.REPLICATE:
                vfdb.update(VxlanFdb(vx, FLOOD, p) for p in e.peers)
    rates = {e.port: e.rate_down_bps for t in tables.vns for e in t.entries  # a switch port is shared: not per port
             if e.port and e.rate_down_bps and not e.port.startswith(tr.SWITCH_PORT_PREFIX)}
    rates |= {r.port: r.rate_down_bps for t in tables.vns for r in t.routes if r.port and r.rate_down_bps}
    shapers = {Shaper(p, rate) for p, rate in rates.items() if p in present_ports | tunnels}
    rate_of = {(e.port, e.destination): e.rate_down_bps for t in tables.vns for e in t.rows(Function.NO_MODIFICATION)}
    mac_classes = {MacClass(port, minor, rate_of[port, mac]) for mac, (port, minor) in tr.mac_minors(tables).items()
                   if port in present_ports}
    # Upstream: each limited port's stage (rates.Stage), a veth pair that takes the port's
    # place for arriving frames; a TES's bridged port hands its bridge membership to the stage.
    attached = dict(attachments)
    bridged_tunnels = {l.name: l.master for l in links if l.name in staged and l.kind == "vxlan" and l.master}
    links = {replace(l, master="") if l.name in bridged_tunnels else l for l in links}
    for st in staged.values():
        master = attached.pop(st.port, "") or bridged_tunnels.get(st.port, "")
        links.add(Link(st.arrival, "veth", master=master, peer=st.shaper, mtu=uplink_mtu))
        links.add(Link(st.shaper, "veth", peer=st.arrival, mtu=uplink_mtu))
        if master:  # learning is off on the ports we create; the bridge is told where the TES is
            moved = {f for f in bfdb if f.port == st.port}
            bfdb = (bfdb - moved) | {BridgeFdb(st.arrival, f.mac) for f in moved}
            bfdb |= {BridgeFdb(st.arrival, e.destination) for t_ in tables.vns for e in t_.rows(Function.NO_MODIFICATION)
                     if e.port == st.port}
        if st.switch:
            mac_classes |= {MacClass(st.shaper, minor, rate) for _, minor, rate in st.minors}
        else:
            shapers.add(Shaper(st.shaper, st.rate_bps))
    text = tr.render(tables, present_ports | tunnels | set(carriers))

    return KernelState(
        links=frozenset(links),
        attachments=frozenset(attached.items()),
        bridge_fdb=frozenset(bfdb),
        vxlan_fdb=frozenset(vfdb),
        nft_hash=tr.digest_of(text),
        nft_text=text,
        missing_ports=frozenset(missing),
        shapers=frozenset(shapers),
        mac_classes=frozenset(mac_classes),
        uplink_classes=uplink_classes(tables),
        addresses=frozenset(addresses),
        expected_ports=expected,
    )


def uplink_classes(tables: HostTables) -> frozenset[UplinkClass]:
    """The uplink's HTB tree from the tables' QoS, rates as the kernel keeps them (bytes/s)."""
    q = tables.qos
    if q is None:
        return frozenset()
    up, cap = tables.uplink, q.capacity_bps // 8 * 8
    tree = {UplinkClass(up, PARENT, cap, cap), UplinkClass(up, DEFAULT, q.default_rate_bps // 8 * 8, cap)}
    tree |= {UplinkClass(up, c.minor, c.rate_bps // 8 * 8, c.ceil_bps // 8 * 8) for c in q.classes}
    return frozenset(tree)
