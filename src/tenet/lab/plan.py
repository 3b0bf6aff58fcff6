"""What a lab is made of, computed from the intent alone. Pure.

Physical networks are bridges in namespaces of their own, routers and hosts are namespaces
wired to them by veth, VMs are namespaces wired to their host. Nothing lives in, or is
attached to, the root namespace. Every command the lab runs comes from this plan.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from tenet.compute.overlay import vr_routes
from tenet.compute.routing import gateway_ip
from tenet.lab.control import Control
from tenet.lab.frr import RouterConfig, RouterPort, anycast_address, rendezvous, router_id
from tenet.lab.management import DEV, Management, Station, management
from tenet.model.layers import VXLAN_OVERHEAD, max_layer
from tenet.model.tenancy import Intent, Server, port_name, switch_port_name

VM_MTU = 1500
SERVER_NIC = "eth0"  # a server's one NIC on a switch port


def underlay_mtu(intent: Intent) -> int:
    """VM frames of 1500 plus VXLAN's 50 bytes per layer (model/layers.py) fit unfragmented."""
    return VM_MTU + VXLAN_OVERHEAD * (max_layer(intent) + 1)




@dataclass(frozen=True)
class Node:
    name: str  # as in the topology file
    kind: str  # network | router | host | vm
    netns: str


@dataclass(frozen=True)
class Veth:
    """A veth pair created directly inside its two namespaces (never in the root namespace)."""

    a_ns: str
    a: str
    b_ns: str
    b: str
    mtu: int
    a_mac: str = ""


@dataclass(frozen=True)
class Command:
    netns: str
    argv: tuple[str, ...]  # an `ip` or `sysctl` invocation inside netns


@dataclass(frozen=True)
class Aaa:
    """Where one of the lab's FreeRADIUS servers listens: a node of its own on its network."""

    name: str
    netns: str
    ip: str


@dataclass(frozen=True)
class LabPlan:
    name: str
    nodes: tuple[Node, ...]
    veths: tuple[Veth, ...]
    commands: tuple[Command, ...]  # run in order after the veths exist
    routers: tuple[RouterConfig, ...]  # each runs FRR (lab/frr.py)
    aaa: tuple[Aaa, ...] = ()  # the RADIUS servers, primary first
    management: Management | None = None  # with store: etcd (lab/management.py)

    def controller_nodes(self) -> tuple[Station, ...]:
        """Where controller replicas run with store: etcd, one namespace each on the
        management network (ctl1..N, as the control block asks); () with SQLite."""
        return self.management.controllers if self.management else ()

    def etcd_nodes(self) -> tuple[Station, ...]:
        return self.management.etcd if self.management else ()

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"no node {name!r} in lab {self.name!r}")


def netns_name(lab: str, node: str) -> str:
    return f"tn-{lab}-{node}"


def _next_hops(intent: Intent) -> dict[tuple[str, str], tuple[str, str]]:
    """(from network, to network) -> (router, router address on the from network), by BFS: a
    host's or server's static routes (its first hop is a router on its own network; the
    routers themselves route by OSPF)."""
    routers = intent.fabric.routers
    result: dict[tuple[str, str], tuple[str, str]] = {}
    for start in intent.fabric.networks:
        seen = {start.name}
        queue: deque[tuple[str, tuple[str, str] | None]] = deque([(start.name, None)])
        while queue:
            net, first = queue.popleft()
            for r in routers:
                if net not in r.networks:
                    continue
                hop = first or (r.name, str(r.address_on(net).ip))
                for other in r.networks:
                    if other not in seen:
                        seen.add(other)
                        result[(start.name, other)] = hop
                        queue.append((other, hop))
    return result


def _routes(intent: Intent, ns: str, net: str, hops: dict, exclude: set[str]) -> list[Command]:
    out = []
    for pn in intent.fabric.networks:
        if pn.name in exclude or (net, pn.name) not in hops:
            continue
        _, via = hops[(net, pn.name)]
        out.append(Command(ns, ("ip", "route", "replace", str(pn.subnet), "via", via)))
    return out


def quiet(ns: str, forward: bool = False, ipv6: bool = False) -> list[Command]:
    """IPv6 off (captures show only what tenet sends) except in a dual-stack VM or virtual
    router, which skips duplicate address detection: the model keeps addresses unique per VN."""
    off = "0" if ipv6 else "1"
    cmds = [
        Command(ns, ("sysctl", "-qw", f"net.ipv6.conf.all.disable_ipv6={off}")),
        Command(ns, ("sysctl", "-qw", f"net.ipv6.conf.default.disable_ipv6={off}")),
        Command(ns, ("ip", "link", "set", "lo", "up")),
    ]
    if ipv6:
        cmds += [Command(ns, ("sysctl", "-qw", f"net.ipv6.conf.{c}.accept_dad=0")) for c in ("all", "default")]
    if forward:
        cmds += [
            Command(ns, ("sysctl", "-qw", "net.ipv4.ip_forward=1")),
            Command(ns, ("sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0")),
            Command(ns, ("sysctl", "-qw", "net.ipv4.conf.default.rp_filter=0")),
        ]
    return cmds


def dual_stack(vm) -> bool:
    """A VM (or virtual router) with an IPv6 address on any NIC gets IPv6 in its namespace."""
    return any(n.ip6 for n in vm.nics)


def nic_wiring(intent: Intent, vm, i: int) -> tuple[Veth, list[Command]]:
    """A VM's NIC `i` as a veth to its host: the VM's side up and addressed (the host's side is
    brought up, or bridged, by whoever owns the host)."""
    ns, dev, nic = netns_name(intent.name, vm.name), f"eth{i}", vm.nics[i]
    veth = Veth(ns, dev, netns_name(intent.name, vm.host), port_name(vm.name, i), VM_MTU, a_mac=nic.mac)
    return veth, [*_no_dad(ns, dev, vm), Command(ns, ("ip", "link", "set", dev, "up")), *_nic_ip(intent, ns, dev, nic)]


def _no_dad(netns: str, dev: str, vm) -> list[Command]:
    """Before a dual-stack VM's NIC comes up: no DAD for its link-local address either (the
    veth existed before `quiet` set the namespace's default)."""
    return [Command(netns, ("sysctl", "-qw", f"net.ipv6.conf.{dev}.accept_dad=0"))] if dual_stack(vm) else []


def _nic_ip(intent: Intent, netns: str, dev: str, nic) -> list[Command]:
    """Address a VM NIC as any OS would: its address and prefix; on a routed VN also a default
    route via the anycast gateway. Nothing else — on a routed VN the NVE answers its ARP.
    IPv6 addresses go on beside it, `nodad` (unique per VN by the model)."""
    cmds = [Command(netns, ("ip", "-6", "addr", "add", str(a), "dev", dev, "nodad")) for a in nic.ip6]
    if nic.ip is None:
        return cmds
    vn = intent.vn(nic.network)
    cmds.insert(0, Command(netns, ("ip", "addr", "add", str(nic.ip), "dev", dev)))
    if vn.forwarding == "ip":
        cmds.append(Command(netns, ("ip", "route", "add", "default", "via", str(gateway_ip(vn)), "dev", dev)))
    elif nic.gateway:
        cmds.append(Command(netns, ("ip", "route", "add", "default", "via", str(nic.gateway), "dev", dev)))
    return cmds


def _management_wiring(m: Management) -> tuple[list[Node], list[Veth], list[Command], list[Command]]:
    """The bridge in its namespace, the namespaces of the members and controllers, and a veth
    `mg0` from the bridge into each station (hosts exist already): nodes, veths, commands
    and the attachments to run after them."""
    nodes = [Node("mgmt", "mgmt", m.netns)] + [Node(s.name, s.kind, s.netns) for s in m.stations if s.kind in ("etcd", "controller")]
    cmds = quiet(m.netns) + [
        Command(m.netns, ("ip", "link", "add", "br0", "type", "bridge")),
        Command(m.netns, ("ip", "addr", "add", str(m.address), "dev", "br0")),
        Command(m.netns, ("ip", "link", "set", "br0", "up")),
    ]
    for n in nodes[1:]:
        cmds += quiet(n.netns)
    veths, attach = [], []
    for i, s in enumerate(m.stations):
        veths.append(Veth(s.netns, DEV, m.netns, f"p{i}", VM_MTU))
        attach += [
            Command(m.netns, ("ip", "link", "set", f"p{i}", "master", "br0", "up")),
            Command(s.netns, ("ip", "addr", "add", str(s.ip), "dev", DEV)),
            Command(s.netns, ("ip", "link", "set", DEV, "up")),
        ]
    return nodes, veths, cmds, attach


@dataclass(frozen=True)
class NicPlan:
    """One VM NIC: the namespaces of its access LAN (if it has several NVEs), its veths, the
    commands that address it, and those that attach ports to bridges (run after all others)."""

    nodes: tuple[Node, ...]
    veths: tuple[Veth, ...]
    commands: tuple[Command, ...]
    attach: tuple[Command, ...]


def vm_commands(intent: Intent, vm) -> list[Command]:
    """A VM's (or virtual router's) own namespace, before its NICs: as `quiet` makes every node."""
    return quiet(netns_name(intent.name, vm.name), forward=vm.router, ipv6=dual_stack(vm))


def nic_plan(intent: Intent, vm, i: int) -> NicPlan:
    """NIC `i` of a VM wired to its host (and, on an access LAN, to its other NVEs too) — at
    `lab up` for every VM, and by the lab's hypervisor for a VM or NIC the intent adds."""
    ns = lambda n: netns_name(intent.name, n)  # noqa: E731
    nic, dev, port = vm.nics[i], f"eth{i}", port_name(vm.name, i)
    if nic.nves:  # an access LAN: the VM and every NVE on one bridge of its own
        lan = Node(f"{vm.name}-lan{i}", "lan", ns(f"{vm.name}-lan{i}"))
        veths = [Veth(ns(vm.name), dev, lan.netns, "vm", VM_MTU, a_mac=nic.mac)]
        attach = [Command(lan.netns, ("ip", "link", "set", "vm", "master", "br0", "up"))]
        cmds = quiet(lan.netns) + [
            Command(lan.netns, ("ip", "link", "add", "br0", "type", "bridge")),
            Command(lan.netns, ("ip", "link", "set", "br0", "up")),
        ]
        for k, h in enumerate((vm.host, *nic.nves)):
            veths.append(Veth(lan.netns, f"n{k}", ns(h), port, VM_MTU))
            attach.append(Command(lan.netns, ("ip", "link", "set", f"n{k}", "master", "br0", "up")))
            cmds.append(Command(ns(h), ("ip", "link", "set", port, "up")))
        cmds += _no_dad(ns(vm.name), dev, vm)
        cmds.append(Command(ns(vm.name), ("ip", "link", "set", dev, "up")))
        cmds += _nic_ip(intent, ns(vm.name), dev, nic)
        return NicPlan((lan,), tuple(veths), tuple(cmds), tuple(attach))
    veth, up = nic_wiring(intent, vm, i)
    if behind_switch(intent, vm.host):
        return NicPlan((), (veth,), tuple(up), tuple(host_port(intent, vm.host, port)))
    return NicPlan((), (veth,), tuple(up + host_port(intent, vm.host, port)), ())


def behind_switch(intent: Intent, host: str) -> bool:
    return any(x.name == host for x in intent.fabric.proxies)


def host_port(intent: Intent, host: str, port: str) -> list[Command]:
    """A VM port's host side comes up; behind an access switch it joins the host's bridge."""
    if behind_switch(intent, host):
        return [Command(netns_name(intent.name, host), ("ip", "link", "set", port, "master", "br0", "up"))]
    return [Command(netns_name(intent.name, host), ("ip", "link", "set", port, "up"))]


def server_port(intent: Intent, s: Server) -> tuple[Veth, list[Command], list[Command]]:
    """A server on a switch port: its one NIC cabled straight to the port (no bridge, no
    underlay address), addressed in its VN as any OS would; the port comes up on the switch.
    Its supplicant, not tenet, talks to the switch (lab/supplicant.py)."""
    ns, port = netns_name(intent.name, s.name), switch_port_name(s.name)
    veth = Veth(ns, SERVER_NIC, netns_name(intent.name, s.switch), port, VM_MTU, a_mac=s.nic.mac)
    up = [Command(ns, ("ip", "link", "set", SERVER_NIC, "up")), *_nic_ip(intent, ns, SERVER_NIC, s.nic)]
    return veth, up, [Command(netns_name(intent.name, s.switch), ("ip", "link", "set", port, "up"))]


def plan(intent: Intent, control: Control = Control()) -> LabPlan:
    lab = intent.name
    ns = lambda n: netns_name(lab, n)  # noqa: E731
    f = intent.fabric
    nodes = (
        [Node(n.name, "network", ns(n.name)) for n in f.networks]
        + [Node(r.name, "router", ns(r.name)) for r in f.routers]
        + [Node(h.name, "host", ns(h.name)) for h in f.hosts]
        + [Node(v.name, "vrouter" if v.router else "vm", ns(v.name)) for v in intent.vms]
        + [Node(s.name, "server", ns(s.name)) for s in intent.servers]
        + [Node(x.name, "proxy", ns(x.name)) for x in f.proxies]
    )
    veths: list[Veth] = []
    mtu = underlay_mtu(intent)
    cmds: list[Command] = []
    dual = {vm.name for vm in intent.vms if dual_stack(vm)}
    for n in nodes:
        cmds += quiet(n.netns, forward=n.kind in ("router", "vrouter"), ipv6=n.name in dual and n.kind in ("vm", "vrouter"))
    # A switch that snoops IGMP, with a querier where no router asks. Its queries are IGMPv3:
    # a v2 query turns every host to v2, whose reports go to the group itself, so the hosts
    # hear each other's and suppress their own — and the snooping switch, which learns
    # members per port, cuts off every host but the last to report (seen: a VN's broadcasts
    # stopped reaching the third host on one segment). v3 reports go to 224.0.0.22, unheard.
    for n in f.networks:
        cmds += [
            Command(ns(n.name), ("ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "1",
                                 "mcast_querier", "1", "mcast_igmp_version", "3", "mcast_query_interval", "500",
                                 "mcast_last_member_interval", "20")),
            Command(ns(n.name), ("ip", "link", "set", "br0", "up")),
        ]
    hops = _next_hops(intent)
    attach: list[Command] = []
    ports = {r.name: tuple(RouterPort(f"u{pi}", p.address, p.network) for pi, p in enumerate(r.ports)) for r in f.routers}
    rp_peers = tuple(router_id(ports[r]) for r in rendezvous(ports)) if ports else ()
    # several RP routers share an anycast address; one alone is the RP at its own address
    rp = anycast_address([n.subnet for n in f.networks]) if len(rp_peers) > 1 else next(iter(rp_peers), "")
    routers: list[RouterConfig] = []
    for ri, r in enumerate(f.routers):
        for p in ports[r.name]:
            peer = f"r{ri}"
            veths.append(Veth(ns(r.name), p.dev, ns(p.network), peer, mtu))
            attach.append(Command(ns(p.network), ("ip", "link", "set", peer, "master", "br0", "up")))
            cmds += [
                Command(ns(r.name), ("ip", "addr", "add", str(p.address), "dev", p.dev)),
                Command(ns(r.name), ("ip", "link", "set", p.dev, "up")),
            ]
        routers.append(cfg := RouterConfig(r.name, ns(r.name), ports[r.name], rp, rp_peers))
        if cfg.anycast:
            cmds.append(Command(ns(r.name), ("ip", "addr", "add", f"{rp}/32", "dev", "lo")))
    on_underlay = [(f"h{i}", h.name, h.network, h.address) for i, h in enumerate(f.hosts)]
    on_underlay += [(f"s{i}", s.name, s.uplink, s.address) for i, s in enumerate(intent.servers) if not s.on_switch]
    for peer, name, pn_name, address in on_underlay:  # hosts, and servers behind L3 hops
        veths.append(Veth(ns(name), "up0", ns(pn_name), peer, mtu))
        attach += [  # one host per port: its IGMP leave ends its membership at once
            Command(ns(pn_name), ("ip", "link", "set", peer, "master", "br0", "up")),
            Command(ns(pn_name), ("ip", "link", "set", peer, "type", "bridge_slave", "fastleave", "on")),
        ]
        cmds += [
            Command(ns(name), ("ip", "addr", "add", str(address), "dev", "up0")),
            Command(ns(name), ("ip", "link", "set", "up0", "up")),
        ]
        cmds += _routes(intent, ns(name), pn_name, hops, {pn_name})
    for x in f.proxies:  # a host behind an access switch: its VMs and its uplink on one plain bridge
        cmds += [
            Command(ns(x.name), ("ip", "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")),
            Command(ns(x.name), ("ip", "link", "set", "br0", "up")),
        ]
        veths.append(Veth(ns(x.name), "up0", ns(x.switch), switch_port_name(x.name), VM_MTU))
        attach += [
            Command(ns(x.name), ("ip", "link", "set", "up0", "master", "br0", "up")),
            Command(ns(x.switch), ("ip", "link", "set", switch_port_name(x.name), "up")),
        ]
    for s in intent.servers:
        if s.on_switch:
            v, up, cabled = server_port(intent, s)
            veths.append(v)
            cmds += up
            attach += cabled
    aaa: list[Aaa] = []
    taken = {h.ip for h in f.hosts} | {p.address.ip for r in f.routers for p in r.ports}
    taken |= {s.address.ip for s in intent.servers if s.address is not None}
    for server in intent.aaa_servers:
        pn = next(n for n in f.networks if n.name == server.network)
        ip = next(a for a in reversed(list(pn.subnet.hosts())) if a not in taken)  # from the top: hosts count up
        taken.add(ip)
        node = Node(server.name, "aaa", ns(server.name))
        nodes.append(node)
        cmds += quiet(node.netns)
        port = f"aaa{len(aaa)}"
        veths.append(Veth(node.netns, "up0", ns(pn.name), port, mtu))
        attach.append(Command(ns(pn.name), ("ip", "link", "set", port, "master", "br0", "up")))
        cmds += [
            Command(node.netns, ("ip", "addr", "add", f"{ip}/{pn.subnet.prefixlen}", "dev", "up0")),
            Command(node.netns, ("ip", "link", "set", "up0", "up")),
        ]
        cmds += _routes(intent, node.netns, pn.name, hops, {pn.name})
        aaa.append(Aaa(server.name, node.netns, str(ip)))
    for vm in intent.vms:
        for i in range(len(vm.nics)):
            w = nic_plan(intent, vm, i)
            nodes += w.nodes
            veths += w.veths
            cmds += w.commands
            attach += w.attach
    for vr, routes in vr_routes(intent).items():  # after every NIC is up and addressed
        attach += [Command(ns(vr), ("ip", "route", "replace", str(net), "via", str(via))) for net, via in routes]
    mgmt = management(intent, control, netns_name)
    if mgmt is not None:
        m_nodes, m_veths, m_cmds, m_attach = _management_wiring(mgmt)
        nodes += m_nodes
        veths += m_veths
        cmds += m_cmds
        attach += m_attach
    return LabPlan(lab, tuple(nodes), tuple(veths), tuple(cmds + attach), tuple(routers), tuple(aaa), mgmt)

