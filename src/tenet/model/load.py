"""Topology document (docs/topology.md) -> complete, validated Intent. Pure but for load_file.

Every problem is collected with its path before anything is returned, so an operator fixes a
file in one round; unknown keys are problems too, so typos never pass silently. What the
operator left out (underlay addresses, VM MACs, multicast groups) is allocated
deterministically here, so everything downstream sees complete intent.
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Container
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, IPv6Address, IPv6Interface, ip_interface, ip_network
from pathlib import Path
from typing import Any

from tenet.model.capacity import DEFAULT_SIZE, capacity_doc, parse_capacity, parse_size, size_doc
from tenet.model.document import read_document
from tenet.model.errors import IntentError, Problem
from tenet.model.rate import RATE, parse_rate
from tenet.model.fabric import ProxyHost, Fabric, Host, PhysicalNetwork, Router, RouterPort
from tenet.model.port_security import port_security
from tenet.model.ipv6 import addresses6, subnet6 as parse_subnet6
from tenet.model.layers import problems as layer_problems
from tenet.model.parts import FABRIC, LAB, TENANCY
from tenet.model.problems import Kind, Problems, declared
from tenet.model.tenancy import (
    AaaServer, AaaUser, Bum, EapMethod, Intent, Join, Nic, Server, VirtualNetwork, Vm, VmState, group_for,
)

MULTICAST = IPv4Network("224.0.0.0/4")
LINK_LOCAL_MCAST = IPv4Network("224.0.0.0/24")
LAB_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,11}$")
NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$")
IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
MAC = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")
ROLES = ("hypervisor", "access-switch", "router")
DEFAULT_TENANT = "default"
FIRST_HOST = 10
AAA_SERVER = "aaa"  # the RADIUS server's name when the topology names none

KEYS = {
    "": FABRIC | TENANCY | LAB,
    "fabric": FABRIC,
    "tenancy": TENANCY,
    "switch": {"network", "ip", "role", "capability", "radius", "mab", "admission_shards", "uplink"},
    "server": {"uplink", "address", "switch", "join", "method", "network", "mac", "ip", "identity", "password", "nves"},
    "aaa": {"users", "servers"},
    "aaa_server": {"network"},
    "user": {"password", "network", "rate", "rate_up", "rate_down", "session_timeout", "ip", "cos", "method", "interim"},
    "underlay": {"networks", "routers"},
    "network": {"subnet", "capacity"},
    "router": {"networks", "addresses"},
    "host": {"network", "ip", "role", "capability", "switch", "admission_shards", "uplink", "capacity"},
    "capacity": {"slots", "cpu", "memory"},
    "size": {"cpu", "memory"},
    "vn": {"vnid", "subnet", "subnet6", "bum", "group", "tenant", "forwarding", "over"},
    "vm": {"host", "nics", "network", "mac", "ip", "ip6", "join", "identity", "password", "nves", "gateway", "state",
           "migrating_to", "size", "allowed", "port_security", "method"},
    "nic": {"network", "mac", "ip", "ip6", "join", "identity", "password", "nves", "gateway", "allowed", "port_security",
            "method"},
    "vrouter": {"host", "tenant", "nics", "state", "migrating_to"},
    "vlink": {"between", "vnid", "subnet", "guarantee", "limit", "delay", "loss"},
}


def known(value: Any, names: Container) -> bool:
    """`value in names` for a value read from a document: a mapping or a list where a name
    belongs names nothing (and is reported so), it is not a TypeError."""
    try:
        return value in names
    except TypeError:
        return False


class _Problems(Problems):
    """The topology document's collector: its keys and its node names."""

    def __init__(self) -> None:
        super().__init__(KEYS, NODE_NAME)


def _net(p: _Problems, value: Any, path: str) -> IPv4Network | None:
    try:
        n = ip_network(str(value), strict=True)
        if n.version != 4:
            raise ValueError
        return n  # type: ignore[return-value]
    except ValueError:
        p.add(path, f"not an IPv4 subnet: {value!r}")
        return None


def _iface(p: _Problems, value: Any, path: str) -> IPv4Interface | None:
    try:
        i = ip_interface(str(value))
        if i.version != 4:
            raise ValueError
        return i  # type: ignore[return-value]
    except ValueError:
        p.add(path, f"not an IPv4 address: {value!r}")
        return None


def _mac(p: _Problems, value: Any, path: str) -> str | None:
    text = str(value).lower()
    if not isinstance(value, str) or not MAC.match(text):
        p.add(path, f"not a MAC address: {value!r}")
        return None
    mac = text.replace("-", ":")
    if int(mac[:2], 16) & 1:
        p.add(path, f"multicast MAC {mac} cannot be a NIC address")
        return None
    if mac == "00:00:00:00:00:00":
        p.add(path, "all-zero MAC cannot be a NIC address")
        return None
    return mac


def generated_mac(vm: str, index: int, salt: int = 0) -> str:
    """Locally administered unicast, stable for a VM's NIC across runs."""
    seed = f"{vm}/{index}" + (f"/{salt}" if salt else "")
    digest = hashlib.sha1(seed.encode()).hexdigest()
    return "02:" + ":".join(digest[i : i + 2] for i in range(0, 10, 2))


def _underlay(p: _Problems, doc: dict) -> tuple[dict[str, PhysicalNetwork], list[Router], set[IPv4Address]]:
    u = p.mapping(doc.get("underlay"), "underlay", "underlay")
    networks: dict[str, PhysicalNetwork] = {}
    for name, spec in p.names(u.get("networks"), "underlay.networks").items():
        path = f"underlay.networks.{name}"
        spec = p.mapping(spec, path, "network")
        if "subnet" not in spec:
            p.add(f"{path}.subnet", "required")
            continue
        subnet = _net(p, spec["subnet"], f"{path}.subnet")
        if subnet is None:
            continue
        for other in networks.values():
            if subnet.overlaps(other.subnet):
                p.add(f"{path}.subnet", f"{subnet} overlaps {other.name} ({other.subnet})")
        capacity = rate_bps(p, spec.get("capacity"), f"{path}.capacity")
        networks[name] = PhysicalNetwork(name, subnet, capacity)
    p.reject(Kind.NETWORK, declared(u.get("networks")) - set(networks))
    if not networks and "networks" not in u:
        p.add("underlay.networks", "at least one physical network is required")
    used: set[IPv4Address] = set()
    routers: list[Router] = []
    pending: list[tuple[str, str, str]] = []
    explicit: dict[tuple[str, str], IPv4Interface] = {}
    for name, spec in p.names(u.get("routers"), "underlay.routers").items():
        path = f"underlay.routers.{name}"
        spec = p.mapping(spec, path, "router")
        nets = spec.get("networks")
        if not isinstance(nets, list) or len(set(map(str, nets))) < 2:
            p.add(f"{path}.networks", "a router joins two or more distinct physical networks")
            continue
        for i, n in enumerate(nets):
            if not known(n, networks):
                p.missing(Kind.NETWORK, n, f"{path}.networks[{i}]")
        addrs = spec.get("addresses") or {}
        if not isinstance(addrs, dict):
            p.add(f"{path}.addresses", "must map network -> address")
            addrs = {}
        for n, a in addrs.items():
            apath = f"{path}.addresses.{n}"
            if n not in nets:
                p.add(apath, f"router is not on {n!r}")
                continue
            ip = _iface(p, a, apath)
            if ip and n in networks:
                ip = IPv4Interface(f"{ip.ip}/{networks[n].subnet.prefixlen}")
                if ip.ip not in networks[n].subnet:
                    p.add(apath, f"{ip.ip} is not in {networks[n].subnet}")
                elif ip.ip in used:
                    p.add(apath, f"{ip.ip} is already used")
                else:
                    used.add(ip.ip)
                    explicit[(name, n)] = ip
        pending += [(name, str(n), path) for n in nets]
    order = list(dict.fromkeys(r for r, _, _ in pending))
    for rname in order:
        ports = []
        for r, n, _ in pending:
            if r != rname or n not in networks:
                continue
            ip = explicit.get((r, n)) or _next_free(networks[n].subnet, used, first=1)
            if ip is None:
                p.add(f"underlay.routers.{r}", f"no free address left in {n}")
                continue
            ports.append(RouterPort(n, ip))
        routers.append(Router(rname, tuple(ports)))
    return networks, routers, used


def rate_bps(p: _Problems, value: Any, path: str) -> int:
    """'32mbit' -> 32000000; absent -> 0; anything else is a problem."""
    if value is None:
        return 0
    try:
        return parse_rate(value)
    except ValueError as e:
        p.add(path, str(e))
        return 0


def _next_free(subnet: IPv4Network, used: set[IPv4Address], first: int) -> IPv4Interface | None:
    for i, ip in enumerate(subnet.hosts(), start=1):
        if i >= first and ip not in used:
            used.add(ip)
            return IPv4Interface(f"{ip}/{subnet.prefixlen}")
    return None


def _hosts(p: _Problems, doc: dict, networks: dict[str, PhysicalNetwork], used: set[IPv4Address],
           section: str = "hosts") -> list[Host]:
    """NVEs on physical networks: `hosts` (hypervisors) or `switches` (access switches).
    Hosts behind a switch are proxies (_proxies), not NVEs."""
    specs = {n: s for n, s in p.names(doc.get(section), section).items()
             if not (section == "hosts" and isinstance(s, dict) and "switch" in s)}
    fixed: dict[str, IPv4Interface] = {}
    for name, spec in specs.items():
        spec = p.mapping(spec, f"{section}.{name}", "host" if section == "hosts" else "switch")
        net = spec.get("network")
        if not known(net, networks):
            p.missing(Kind.NETWORK, net, f"{section}.{name}.network")
            continue
        if "ip" in spec:
            ip = _iface(p, spec["ip"], f"{section}.{name}.ip")
            if ip is None:
                continue
            subnet = networks[net].subnet
            if ip.ip not in subnet or ip.ip in (subnet.network_address, subnet.broadcast_address):
                p.add(f"{section}.{name}.ip", f"{ip.ip} is not a host address of {net} ({subnet})")
            elif ip.ip in used:
                p.add(f"{section}.{name}.ip", f"{ip.ip} is already used")
            else:
                used.add(ip.ip)
                fixed[name] = IPv4Interface(f"{ip.ip}/{subnet.prefixlen}")
    hosts = []
    for name, spec in specs.items():
        if not isinstance(spec, dict) or not known(spec.get("network"), networks):
            continue
        ip = fixed.get(name)
        if ip is None and "ip" in spec:
            continue
        ip = ip or _next_free(networks[spec["network"]].subnet, used, first=FIRST_HOST)
        if ip is None:
            p.add(f"{section}.{name}", f"no free address left in {spec['network']}")
            continue
        role, cap = spec.get("role", "hypervisor"), spec.get("capability", 100)
        if section == "switches":
            if spec.get("role", "nve") != "nve" or spec.get("radius", True) is not True:
                p.add(f"{section}.{name}", "a switch is an NVE with an 802.1X authenticator: role nve, radius true")
                continue
            if not isinstance(spec.get("mab", False), bool):
                p.add(f"{section}.{name}.mab", "must be true or false")
                continue
            role = "access-switch"
        if role not in ROLES:
            p.add(f"{section}.{name}.role", f"must be one of {', '.join(ROLES)}, not {role!r}")
            continue
        if not isinstance(cap, int) or isinstance(cap, bool) or not 0 <= cap < 2**32:
            p.add(f"{section}.{name}.capability", f"must be an integer 0..2^32-1, not {cap!r}")
            continue
        shards = spec.get("admission_shards", 1)
        if not isinstance(shards, int) or isinstance(shards, bool) or not 0 <= shards <= 64:
            p.add(f"{section}.{name}.admission_shards", f"must be an integer 0..64 (0: one per CPU), not {shards!r}")
            continue
        uplink = spec.get("uplink", "up0")
        if not isinstance(uplink, str) or not IFNAME.match(uplink):
            p.add(f"{section}.{name}.uplink", f"must be an interface name of 1..15 characters, not {uplink!r}")
            continue
        capacity = parse_capacity(p, spec["capacity"], f"{section}.{name}.capacity") if "capacity" in spec else None
        hosts.append(Host(name, spec["network"], ip, role, cap, switch=section == "switches",
                          mab=bool(spec.get("mab", False)), admission_shards=shards, uplink=uplink, capacity=capacity))
    return hosts


def _proxies(p: _Problems, doc: dict, switches: set[str]) -> list[ProxyHost]:
    out = []
    for name, spec in p.names(doc.get("hosts"), "hosts").items():
        if not isinstance(spec, dict) or "switch" not in spec:
            continue
        path, allowed = f"hosts.{name}", {"switch", "role", "capacity"}
        if not known(spec["switch"], switches):
            p.missing(Kind.HOST, spec["switch"], f"{path}.switch", f"no switch named {spec['switch']!r}")
        elif set(spec) - allowed:
            p.add(path, f"a host behind a switch takes only switch, role and capacity, not {', '.join(sorted(map(str, set(spec) - allowed)))}")
        elif spec.get("role", "proxy-8021x") != "proxy-8021x":
            p.add(f"{path}.role", f"a host behind a switch is proxy-8021x, not {spec.get('role')!r}")
        else:
            capacity = parse_capacity(p, spec["capacity"], f"{path}.capacity") if "capacity" in spec else None
            out.append(ProxyHost(name, spec["switch"], capacity=capacity))
    return out


def _vns(p: _Problems, doc: dict) -> tuple[list[VirtualNetwork], list[str]]:
    tenants_doc = doc.get("tenants") or []
    if not isinstance(tenants_doc, list) or not all(isinstance(t, str) for t in tenants_doc):
        p.add("tenants", "must be a list of tenant names")
        tenants_doc = []
    tenants = list(dict.fromkeys(tenants_doc))
    vns: list[VirtualNetwork] = []
    by_vnid: dict[int, str] = {}
    by_group: dict[IPv4Address, str] = {}
    for name, spec in p.names(doc.get("networks"), "networks").items():
        path = f"networks.{name}"
        spec = p.mapping(spec, path, "vn")
        vnid = claim_vnid(p, spec.get("vnid"), f"{path}.vnid", name, by_vnid)
        if vnid is None:
            continue
        subnet = _net(p, spec["subnet"], f"{path}.subnet") if "subnet" in spec else None
        if subnet is None and "subnet" in spec:
            continue
        try:
            bum = Bum(spec.get("bum", "replicate" if "over" in spec else "multicast"))
        except ValueError:
            p.add(f"{path}.bum", f"must be multicast or replicate, not {spec.get('bum')!r}")
            continue
        group = None
        if bum is Bum.MULTICAST:
            group = group_for(vnid)
            if "group" in spec:
                try:
                    group = IPv4Address(str(spec["group"]))
                except ValueError:
                    p.add(f"{path}.group", f"not an IPv4 address: {spec['group']!r}")
                    continue
                if group not in MULTICAST or group in LINK_LOCAL_MCAST:
                    p.add(f"{path}.group", f"{group} is not a routable multicast group")
                    continue
            if group in by_group:
                p.add(f"{path}.group", f"group {group} is already used by {by_group[group]}")
                continue
            by_group[group] = name
        tenant = spec.get("tenant", DEFAULT_TENANT)
        if not isinstance(tenant, str) or not NODE_NAME.match(tenant):
            p.add(f"{path}.tenant", f"not a tenant name: {tenant!r}")
            continue
        if tenant not in tenants:
            tenants.append(tenant)
        forwarding = spec.get("forwarding", "mac")
        if forwarding not in ("mac", "ip"):
            p.add(f"{path}.forwarding", f"must be mac or ip, not {forwarding!r}")
            continue
        if forwarding == "ip" and subnet is None:
            p.add(f"{path}.forwarding", "an IP-based VN needs a subnet to route")
            continue
        subnet6 = parse_subnet6(p, spec["subnet6"], f"{path}.subnet6") if "subnet6" in spec else None
        if subnet6 is None and "subnet6" in spec:
            continue
        if subnet6 is not None and forwarding == "ip":
            p.add(f"{path}.subnet6", "a routed VN (forwarding: ip) is IPv4-only; IPv6 needs forwarding: mac")
            continue
        over = spec.get("over", "")
        if not isinstance(over, str):
            p.add(f"{path}.over", f"must name a VN, not {over!r}")
            continue
        vns.append(VirtualNetwork(name, vnid, tenant, subnet, bum, group, forwarding, over, subnet6))
    p.reject(Kind.VN, declared(doc.get("networks")) - {v.name for v in vns})
    return vns, tenants


def claim_vnid(p: _Problems, vnid: Any, path: str, owner: str, taken: dict[int, str]) -> int | None:
    """A valid VN-ID no other VN (or virtual link) has: recorded as `owner`'s in `taken`."""
    if not isinstance(vnid, int) or isinstance(vnid, bool) or not 1 <= vnid <= 0xFFFFFF:
        p.add(path, f"VN-ID must be an integer 1..16777215, not {vnid!r}")
        return None
    if vnid in taken:
        p.add(path, f"VN-ID {vnid} is already used by {taken[vnid]}")
        return None
    taken[vnid] = owner
    return vnid


def _nic(p: _Problems, spec: dict, path: str, vm: str, index: int, vns: dict[str, VirtualNetwork]) -> Nic | None:
    net = spec.get("network")
    if not known(net, vns):
        p.missing(Kind.VN, net, f"{path}.network")
        return None
    vn = vns[net]
    mac = _mac(p, spec["mac"], f"{path}.mac") if "mac" in spec else generated_mac(vm, index)
    ip = None
    if spec.get("ip") is not None:
        text = str(spec["ip"])
        if "/" not in text and vn.subnet is not None:
            text = f"{text}/{vn.subnet.prefixlen}"
        ip = _iface(p, text, f"{path}.ip")
        if ip is not None:
            if "/" not in text:
                p.add(f"{path}.ip", f"{text} needs a prefix length (VN {net} has no subnet)")
                ip = None
            elif vn.subnet is not None and (ip.network != vn.subnet):
                p.add(f"{path}.ip", f"{ip} is not in VN {net}'s subnet {vn.subnet}")
                ip = None
            elif vn.forwarding == "ip" and ip.ip == next(vn.subnet.hosts()):
                p.add(f"{path}.ip", f"{ip.ip} is VN {net}'s gateway (a routed VN's first address)")
                ip = None
    ip6: tuple[IPv6Interface, ...] = ()
    if spec.get("ip6") is not None:
        if vn.forwarding == "ip":
            p.add(f"{path}.ip6", f"VN {net} is routed (forwarding: ip), which is IPv4-only")
            return None
        got = addresses6(p, spec["ip6"], f"{path}.ip6", net, vn.subnet6)
        if got is None:
            return None
        ip6 = got
    try:
        join = Join(spec.get("join", "static"))
    except ValueError:
        p.add(f"{path}.join", f"must be static, discover, 8021x or mab, not {spec.get('join')!r}")
        return None
    identity, password = spec.get("identity", ""), spec.get("password", "")
    credentialed = {Join.DOT1X: "the host authenticates the VM with them", Join.DISCOVER: "the TES authenticates itself"}
    method = eap_method(p, spec.get("method"), f"{path}.method")
    if method is None:
        return None
    if "method" in spec and join not in credentialed:
        p.add(f"{path}.method", "only a NIC that authenticates (join: discover or 8021x) speaks an EAP method")
        return None
    if join in credentialed and not (isinstance(identity, str) and identity
                                     and (isinstance(password, str) and password or not method.needs_password)):
        needs = "identity and password" if method.needs_password else "an identity (method tls: its certificate's name)"
        p.add(path, f"join: {join.value} needs {needs} ({credentialed[join]})")
        return None
    if not isinstance(password, str):
        p.add(f"{path}.password", "must be a string")
        return None
    if join is Join.MAB and (identity or password):
        p.add(path, "join: mab authenticates by MAC alone: no identity or password")
        return None
    if join is Join.MAB and ip6 and ip is None:
        p.add(f"{path}.ip6", "join: mab starts on the MAC's first ARP: an IPv6-only NIC would never be tried (give it ip too)")
        return None
    if join is Join.STATIC and (identity or password):
        p.add(path, "identity/password only make sense with join: discover")
        return None
    nves = spec.get("nves", [])
    if not isinstance(nves, list) or not all(isinstance(n, str) for n in nves):
        p.add(f"{path}.nves", "must be a list of host names")
        return None
    if nves and join is not Join.DISCOVER:
        p.add(f"{path}.nves", "only a discovering NIC can sit on a LAN with several NVEs")
        return None
    gateway = None
    if spec.get("gateway") is not None:
        gw = _iface(p, spec["gateway"], f"{path}.gateway")
        if gw is None:
            return None
        if ip is None or gw.ip not in ip.network or gw.ip == ip.ip:
            p.add(f"{path}.gateway", f"{gw.ip} is not another address on the NIC's subnet")
            return None
        gateway = gw.ip
    guard = port_security(p, spec, path)
    if mac is None or guard is None:
        return None
    return Nic(net, mac, ip, join, identity, password, tuple(nves), gateway, ip6, *guard, method=method)


def _vms(p: _Problems, doc: dict, nves: set[str], vns: dict[str, VirtualNetwork], proxies: set[str] = frozenset(),
         section: str = "vms", seen: tuple[dict, dict] | None = None) -> list[Vm]:
    """VMs (or, with section "vrouters", virtual routers already given their link NICs);
    `seen` carries the MACs and IPs taken so far per VN, so both sections share one check."""
    hosts = nves | proxies
    vms: list[Vm] = []
    macs: dict[tuple[str, str], str] = seen[0] if seen else {}
    ips: dict[tuple[str, IPv4Address | IPv6Address], str] = seen[1] if seen else {}  # both families
    for name, spec in p.names(doc.get(section), section).items():
        path = f"{section}.{name}"
        spec = p.mapping(spec, path, "vm")
        if not known(spec.get("host"), hosts):
            p.missing(Kind.HOST, spec.get("host"), f"{path}.host")
        short = {k: spec[k] for k in KEYS["nic"] if k in spec}
        if short and "nics" in spec:
            p.add(path, "give either nics or the one-NIC shorthand (network/mac/ip), not both")
            continue
        raw = [short] if short else spec.get("nics")
        if not isinstance(raw, list):
            p.add(f"{path}.nics", "required: a list of NICs (or network/ip at VM level)")
            continue
        nics: list[Nic] = []
        for i, n in enumerate(raw):
            npath = f"{path}.nics[{i}]" if not short else path
            nspec = p.mapping(n, npath, "nic")
            nic = _nic(p, nspec, npath, name, i, vns)
            if nic is None:
                continue
            if any(x.network == nic.network for x in nics):
                p.add(f"{npath}.network", f"{name} already has a NIC on {nic.network}")
                continue
            salt = 0
            while "mac" not in nspec and (nic.network, nic.mac) in macs:
                salt += 1
                nic = replace(nic, mac=generated_mac(name, i, salt))
            if (nic.network, nic.mac) in macs:
                p.add(f"{npath}.mac", f"{nic.mac} is already used in {nic.network} by {macs[(nic.network, nic.mac)]}")
                continue
            if nic.ip is not None and (nic.network, nic.ip.ip) in ips:
                p.add(f"{npath}.ip", f"{nic.ip.ip} is already used in {nic.network} by {ips[(nic.network, nic.ip.ip)]}")
                continue
            taken6 = next((a.ip for a in nic.ip6 if (nic.network, a.ip) in ips), None)
            if taken6 is not None:
                p.add(f"{npath}.ip6", f"{taken6} is already used in {nic.network} by {ips[(nic.network, taken6)]}")
                continue
            macs[(nic.network, nic.mac)] = npath
            for a in (nic.ip, *nic.ip6):
                if a is not None:
                    ips[(nic.network, a.ip)] = npath
            nics.append(nic)
        behind = known(spec.get("host"), proxies)
        for i, nic in enumerate(nics):
            if behind != (nic.join in (Join.DOT1X, Join.MAB)):
                p.add(f"{path}.nics[{i}].join", "a VM behind an access switch joins by 8021x or mab, and only such a VM does"
                      if behind else "8021x and mab are for VMs on hosts behind an access switch")
            if nic.join is Join.DOT1X and nic.method is EapMethod.TLS:
                p.add(f"{path}.nics[{i}].method", "the host vouches for its VMs with a password (md5, peap or ttls): "
                      "EAP-TLS needs the VM's own certificate and supplicant (a server on a switch port can: servers.<s>.switch)")
            for j, h in enumerate(nic.nves):
                if h == spec.get("host") or (not known(h, hosts) and not p.is_rejected(Kind.HOST, h)):
                    p.add(f"{path}.nics[{i}].nves[{j}]", f"{h!r} is not another host")
        state, to = _state(p, spec, path), _arriving(p, spec, path, nves, proxies)
        size = (parse_size(p, spec["size"], f"{path}.size") if "size" in spec else None) or DEFAULT_SIZE
        if known(spec.get("host"), hosts) and len(nics) == len(raw) and state is not None and to is not None:
            vms.append(Vm(name, spec["host"], tuple(nics), router=section == "vrouters", state=state, migrating_to=to,
                          size=size))
    return vms


def _state(p: _Problems, spec: dict, path: str) -> VmState | None:
    try:
        return VmState(spec.get("state", "running"))
    except ValueError:
        p.add(f"{path}.state", f"must be one of {', '.join(s.value for s in VmState)}, not {spec.get('state')!r}")
        return None


def _arriving(p: _Problems, spec: dict, path: str, nves: set[str], proxies: set[str]) -> str | None:
    """The host a live migration brings the VM to: another host of the same kind (a VM behind
    an access switch joins by 802.1X, one on a hypervisor NVE does not)."""
    to, host = spec.get("migrating_to", ""), spec.get("host")
    if not to:
        return ""
    if to == host:
        p.add(f"{path}.migrating_to", f"{to!r} is not another host")
        return None
    if to not in nves | proxies:
        p.missing(Kind.HOST, to, f"{path}.migrating_to")
        return None
    if (to in proxies) != (host in proxies):
        p.add(f"{path}.migrating_to", f"{to} is {'' if to in proxies else 'not '}behind an access switch and "
              f"{host} is {'' if host in proxies else 'not'}: a VM migrates between hosts of one kind")
        return None
    return to


def _servers(p: _Problems, doc: dict, networks: dict[str, PhysicalNetwork], used: set[IPv4Address], hosts: set[str],
             vns: dict[str, VirtualNetwork], vms: list[Vm], switches: set[str] = frozenset(),
             users: dict[str, AaaUser] | None = None) -> list[Server]:
    """Physical TESs behind an L3 hop (underlay addresses allocated after the hosts'), or on an
    access switch's port (no underlay address: their own supplicant, 802.1X)."""
    servers: list[Server] = []
    macs = {(n.network, n.mac) for vm in vms for n in vm.nics}
    ips = {(n.network, n.ip.ip) for vm in vms for n in vm.nics if n.ip}
    for name, spec in p.names(doc.get("servers"), "servers").items():
        path = f"servers.{name}"
        spec = p.mapping(spec, path, "server")
        if "switch" in spec:
            server = _switched_server(p, spec, path, name, vns, switches, users or {})
        else:
            server = _routed_server(p, spec, path, name, networks, used, hosts, vns)
        if server is None:
            continue
        nic = server.nic
        if (nic.network, nic.mac) in macs or (nic.ip and (nic.network, nic.ip.ip) in ips):
            p.add(path, f"its MAC or IP is already used in {nic.network}")
            continue
        if server.address is not None:
            used.add(server.address.ip)
        macs.add((nic.network, nic.mac))
        if nic.ip:
            ips.add((nic.network, nic.ip.ip))
        servers.append(server)
    return servers


def _routed_server(p: _Problems, spec: dict, path: str, name: str, networks: dict[str, PhysicalNetwork],
                   used: set[IPv4Address], hosts: set[str], vns: dict[str, VirtualNetwork]) -> Server | None:
    """Behind an L3 hop: NVO3 over UDP (join: discover, the only way there)."""
    pn = networks.get(spec.get("uplink")) if known(spec.get("uplink"), networks) else None
    if pn is None:
        p.missing(Kind.NETWORK, spec.get("uplink"), f"{path}.uplink")
        return None
    if spec.get("join", "discover") != "discover":
        p.add(f"{path}.join", f"a server behind an L3 hop attaches by NVO3 (discover), not {spec['join']!r}; "
              "802.1X is for a server on a switch port (switch: instead of uplink:)")
        return None
    nic = _nic(p, {k: v for k, v in spec.items() if k not in ("uplink", "address")} | {"join": "discover"}, path, name, 0, vns)
    if nic is None:
        return None
    bad = [h for h in nic.nves if h not in hosts]
    if bad:
        p.missing(Kind.HOST, bad[0], f"{path}.nves")
        return None
    if "address" in spec:
        ip = _iface(p, f"{spec['address']}/{pn.subnet.prefixlen}", f"{path}.address")
        if ip is None:
            return None
        if ip.ip not in pn.subnet or ip.ip in used or ip.ip in (pn.subnet.network_address, pn.subnet.broadcast_address):
            p.add(f"{path}.address", f"{ip.ip} is not a free host address of {pn.name} ({pn.subnet})")
            return None
        return Server(name, pn.name, ip, nic)
    address = _next_free(pn.subnet, used, first=FIRST_HOST)
    if address is None:
        p.add(path, f"no free address left in {pn.name}")
        return None
    return Server(name, pn.name, address, nic)


def _switched_server(p: _Problems, spec: dict, path: str, name: str, vns: dict[str, VirtualNetwork],
                     switches: set[str], users: dict[str, AaaUser]) -> Server | None:
    """On an access switch's port: it authenticates itself by 802.1X with its own supplicant.
    Where its identity is a user of this document, the user's VN and method must be the
    server's (else the switch would put it elsewhere, or RADIUS refuse the method); its
    password is not compared: a wrong one is how a lab shows a reject."""
    if not known(spec["switch"], switches):
        p.missing(Kind.HOST, spec["switch"], f"{path}.switch", f"no switch named {spec['switch']!r} (declared under switches:)")
        return None
    wired = sorted(k for k in ("uplink", "address", "nves") if k in spec)
    if wired:
        p.add(path, f"a server on a switch port has no {', '.join(wired)}: its one NIC is cabled to {spec['switch']}")
        return None
    if spec.get("join", "8021x") != "8021x":
        p.add(f"{path}.join", f"a server on a switch port authenticates itself by 802.1X (join: 8021x), not {spec['join']!r}")
        return None
    method = spec.get("method", "md5")
    if method == "tls" and spec.get("password"):
        p.add(f"{path}.password", "EAP-TLS authenticates with the client certificate: no password")
        return None
    nic = _nic(p, dict(spec, join="8021x"), path, name, 0, vns)
    if nic is None:
        return None
    user = users.get(nic.identity)
    if nic.method is EapMethod.TLS and user is None:
        p.add(f"{path}.identity", f"EAP-TLS needs a client certificate, which the lab issues to AAA users only: "
              f"no aaa.users.{nic.identity}")
        return None
    if user is not None and user.network != nic.network:
        p.add(f"{path}.network", f"RADIUS puts {nic.identity} into {user.network}, not {nic.network}")
        return None
    if user is not None and user.method is not nic.method:
        p.add(f"{path}.method", f"aaa.users.{nic.identity} authenticates by {user.method.value}, not {nic.method.value}")
        return None
    return Server(name, "", None, nic, switch=spec["switch"])


def _aaa(p: _Problems, doc: dict, vns: dict[str, VirtualNetwork]) -> list[AaaUser]:
    a = p.mapping(doc.get("aaa"), "aaa", "aaa")
    users = []
    for name, spec in p.names(a.get("users"), "aaa.users").items():
        path = f"aaa.users.{name}"
        spec = p.mapping(spec, path, "user")
        password, net = spec.get("password"), spec.get("network")
        timeout = spec.get("session_timeout", 0)
        method = eap_method(p, spec.get("method"), f"{path}.method")
        ok = method is not None
        if method is not None and method.needs_password and (not isinstance(password, str) or not password):
            p.add(f"{path}.password", f"required (method {method.value} authenticates with it)")
            ok = False
        if password is not None and not isinstance(password, str):
            p.add(f"{path}.password", "must be a string")
            ok = False
        if not known(net, vns):
            p.missing(Kind.VN, net, f"{path}.network")
            ok = False
        rates = {k: str(spec.get(k, "")) for k in ("rate", "rate_up", "rate_down")}
        for key, value in rates.items():
            if value and not RATE.match(value):
                p.add(f"{path}.{key}", f"not a rate like 50mbit: {value!r}")
                ok = False
        if rates["rate"] and (rates["rate_up"] or rates["rate_down"]):
            p.add(f"{path}.rate", "sets both directions: give rate_up and/or rate_down instead, not both forms")
            ok = False
        if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout < 0:
            p.add(f"{path}.session_timeout", f"must be seconds >= 0, not {timeout!r}")
            ok = False
        interim = spec.get("interim", 0)
        if not isinstance(interim, int) or isinstance(interim, bool) or interim < 0:
            p.add(f"{path}.interim", f"must be seconds >= 0, not {interim!r}")
            ok = False
        ip = None
        if spec.get("ip") is not None:
            vn = vns.get(net) if isinstance(net, str) else None
            text = str(spec["ip"])
            if "/" not in text and vn is not None and vn.subnet is not None:
                text = f"{text}/{vn.subnet.prefixlen}"
            ip = _iface(p, text, f"{path}.ip")
            if ip is None:
                ok = False
            elif vn is not None and vn.subnet is not None and ip.network != vn.subnet:
                p.add(f"{path}.ip", f"{ip} is not in VN {net}'s subnet {vn.subnet}")
                ok = False
        cos = spec.get("cos")
        if cos is not None and (not isinstance(cos, int) or isinstance(cos, bool) or not 0 <= cos <= 7):
            p.add(f"{path}.cos", f"must be a class of service 0..7, not {cos!r}")
            ok = False
        if ok:
            users.append(AaaUser(name, password or "", net, rates["rate"], timeout, ip, cos,
                                 rate_up=rates["rate_up"], rate_down=rates["rate_down"], method=method, interim=interim))
    return users


def eap_method(p: _Problems, value: Any, path: str) -> EapMethod | None:
    """An EAP method by name (default md5, what every file before methods meant)."""
    try:
        return EapMethod(value if value is not None else "md5")
    except ValueError:
        p.add(path, f"must be one of {', '.join(m.value for m in EapMethod)}, not {value!r}")
        return None


def _aaa_servers(p: _Problems, doc: dict, networks: dict[str, PhysicalNetwork], users: list[AaaUser]) -> list[AaaServer]:
    """The RADIUS servers, primary first; with users and none named, one called "aaa" on the
    first physical network (what every file before failover meant)."""
    a = doc.get("aaa") if isinstance(doc.get("aaa"), dict) else {}
    named = p.names(a.get("servers"), "aaa.servers")
    if named and not users:
        p.add("aaa.servers", "RADIUS servers without aaa.users would authenticate nobody")
        return []
    if not users:
        return []
    if not named:
        return [AaaServer(AAA_SERVER, next(iter(networks)))] if networks else []
    servers = []
    for name, spec in named.items():
        path = f"aaa.servers.{name}"
        spec = p.mapping(spec, path, "aaa_server")
        net = spec.get("network", next(iter(networks), None))
        if not known(net, networks):
            p.missing(Kind.NETWORK, net, f"{path}.network")
            continue
        servers.append(AaaServer(name, net))
    return servers


def load_intent(doc: Any, source: str = "") -> Intent:
    """Validate and complete a whole topology document (fabric and tenancy in one mapping, the
    lab's file); raise IntentError listing every problem of both parts."""
    p = _Problems()
    if not isinstance(doc, dict):
        raise IntentError((Problem("", "a topology must be a mapping"),), source)
    p.mapping(doc, "", "")
    stage = _fabric(p, doc)
    intent = _tenancy(p, doc, stage)
    if p.items:
        raise IntentError(tuple(p.items), source)
    return intent


def load_fabric(doc: Any, source: str = "") -> Fabric:
    """The fabric part alone (model/parts.py names its keys): what exists, validated without
    any tenancy."""
    p = _Problems()
    if not isinstance(doc, dict):
        raise IntentError((Problem("", "the fabric must be a mapping"),), source)
    p.mapping(doc, "", "fabric")
    stage = _fabric(p, doc)
    if p.items:
        raise IntentError(tuple(p.items), source)
    return stage.fabric


def load_tenancy(doc: Any, fabric: Fabric, name: str, source: str = "") -> Intent:
    """The tenancy part alone, against a fabric already validated (the one in the store,
    with its registered hosts): problems are named by their path in the tenancy."""
    p = _Problems()
    if not isinstance(doc, dict):
        raise IntentError((Problem("", "the tenancy must be a mapping"),), source)
    p.mapping(doc, "", "tenancy")
    used = {r.address.ip for rt in fabric.routers for r in rt.ports} | {h.ip for h in fabric.hosts}
    intent = _tenancy(p, doc, _Stage(name, {n.name: n for n in fabric.networks}, used, fabric))
    if p.items:
        raise IntentError(tuple(p.items), source)
    return intent


@dataclass(frozen=True)
class _Stage:
    """What the tenancy is checked against: the fabric, and the underlay addresses it uses."""

    name: str
    networks: dict[str, PhysicalNetwork]
    used: set[IPv4Address]
    fabric: Fabric


def _fabric(p: _Problems, doc: dict) -> _Stage:
    name = doc.get("name")
    if not isinstance(name, str) or not LAB_NAME.match(name):
        p.add("name", f"required: [a-z0-9][a-z0-9-]{{0,11}}, not {name!r}")
    networks, routers, used = _underlay(p, doc)
    hosts = _hosts(p, doc, networks, used) + _hosts(p, doc, networks, used, "switches")
    proxies = _proxies(p, doc, {h.name for h in hosts if h.switch})
    p.reject(Kind.HOST, (declared(doc.get("hosts")) | declared(doc.get("switches")))
             - {h.name for h in hosts} - {x.name for x in proxies})
    fabric = Fabric(tuple(networks.values()), tuple(routers), tuple(hosts), tuple(proxies))
    return _Stage(str(name), networks, used, fabric)


def _tenancy(p: _Problems, doc: dict, stage: _Stage) -> Intent:
    networks, used, fabric = stage.networks, stage.used, stage.fabric
    hosts, proxies, routers = list(fabric.hosts), fabric.proxies, fabric.routers
    vns, tenants = _vns(p, doc)
    seen: tuple[dict, dict] = ({}, {})
    vms = _vms(p, doc, {h.name for h in hosts if not h.switch}, {v.name: v for v in vns}, {x.name for x in proxies},
               seen=seen)
    from tenet.model.overlay_load import load_overlay
    vrouters, vlinks, vms_of_vrs, vl_vns = load_overlay(p, doc, networks, hosts, vns, tenants, seen)
    vns, vms = vns + vl_vns, vms + vms_of_vrs
    users = _aaa(p, doc, {v.name: v for v in vns})
    servers = _servers(p, doc, networks, used, {h.name for h in hosts}, {v.name: v for v in vns}, vms,
                       {h.name for h in hosts if h.switch}, {u.name: u for u in users})
    radius = _aaa_servers(p, doc, networks, users)
    nic_ips = [(vm.name, n.network, n.ip) for vm in vms for n in vm.nics if n.ip]
    nic_ips += [(f"aaa user {u.name}", u.network, u.ip) for u in users if u.ip]
    layered = [v for v in vns if not p.is_rejected(Kind.VN, v.over)]  # over a rejected VN: its problem says it
    for path, message in layer_problems(layered, [h.name for h in hosts], nic_ips):
        p.add(path, message)
    kinds = {r.name: "RADIUS server" for r in radius}
    for kind, names in (("network", networks), ("router", [r.name for r in routers]), ("host", [h.name for h in hosts]), ("proxy host", [x.name for x in proxies]), ("vm", [v.name for v in vms if not v.router]), ("virtual router", [v.name for v in vrouters]), ("server", [s.name for s in servers])):
        for n in names:
            if n in kinds:
                p.add(n, f"name used by both a {kinds[n]} and a {kind} (node names share one namespace)")
            kinds[n] = kind
    return Intent(stage.name, fabric, tuple(tenants), tuple(vns), tuple(vms), tuple(users), tuple(servers),
                  tuple(vrouters), tuple(vlinks), tuple(radius))


def load_file(path: str | Path) -> Intent:
    return load_intent(read_document(path), str(path))


def intent_to_doc(intent: Intent) -> dict:
    """The canonical, fully allocated document: load_intent(intent_to_doc(i)) == i."""
    from tenet.model.overlay_load import overlay_doc
    f = intent.fabric
    links = {vl.name for vl in intent.vlinks}
    return {
        "name": intent.name,
        "underlay": {
            "networks": {n.name: {"subnet": str(n.subnet), **({"capacity": f"{n.capacity_bps}bit"} if n.capacity_bps else {})}
                         for n in f.networks},
            "routers": {
                r.name: {"networks": list(r.networks), "addresses": {p.network: str(p.address.ip) for p in r.ports}}
                for r in f.routers
            },
        },
        "hosts": {
            **{h.name: {"network": h.network, "ip": str(h.ip), "role": h.role, "capability": h.capability,
                        **({"admission_shards": h.admission_shards} if h.admission_shards != 1 else {}),
                        **({"uplink": h.uplink} if h.uplink != "up0" else {}),
                        **({"capacity": capacity_doc(h.capacity)} if h.capacity is not None else {})}
               for h in f.hosts if not h.switch},
            **{x.name: {"switch": x.switch, "role": x.role,
                        **({"capacity": capacity_doc(x.capacity)} if x.capacity is not None else {})}
               for x in f.proxies},
        },
        **(
            {"switches": {h.name: {"network": h.network, "ip": str(h.ip), "capability": h.capability, "mab": h.mab,
                                   **({"admission_shards": h.admission_shards} if h.admission_shards != 1 else {}),
                                   **({"uplink": h.uplink} if h.uplink != "up0" else {})}
                          for h in f.hosts if h.switch}}
            if any(h.switch for h in f.hosts)
            else {}
        ),
        "tenants": list(intent.tenants),
        "networks": {
            v.name: {
                "vnid": v.vnid,
                "tenant": v.tenant,
                "bum": v.bum.value,
                **({"forwarding": v.forwarding} if v.forwarding != "mac" else {}),
                **({"over": v.over} if v.over else {}),
                **({"subnet": str(v.subnet)} if v.subnet else {}),
                **({"subnet6": str(v.subnet6)} if v.subnet6 else {}),
                **({"group": str(v.group)} if v.group else {}),
            }
            for v in intent.vns if v.name not in links
        },
        "vms": {
            vm.name: {
                "host": vm.host,
                **({"migrating_to": vm.migrating_to} if vm.migrating_to else {}),
                **({"state": vm.state.value} if vm.state is not VmState.RUNNING else {}),
                **({"size": size_doc(vm.size)} if vm.size != DEFAULT_SIZE else {}),
                "nics": [_nic_doc(n) for n in vm.nics],
            }
            for vm in intent.vms if not vm.router
        },
        **(
            {"aaa": {"users": {u.name: _user_doc(u) for u in intent.aaa},
                     "servers": {r.name: {"network": r.network} for r in intent.aaa_servers}}}
            if intent.aaa
            else {}
        ),
        **(
            {"servers": {s.name: _server_doc(s) for s in intent.servers}}
            if intent.servers
            else {}
        ),
        **overlay_doc(intent),
    }


def _server_doc(s: Server) -> dict:
    if s.on_switch:
        return {"switch": s.switch, **_nic_doc(s.nic)}
    assert s.address is not None, "a server behind an L3 hop has its underlay address"
    d = {"uplink": s.uplink, "address": str(s.address.ip), **_nic_doc(s.nic)}
    del d["join"]
    return d


def _nic_doc(n: Nic) -> dict:
    d: dict = {"network": n.network, "mac": n.mac}
    if n.ip:
        d["ip"] = str(n.ip)
    if n.ip6:
        d["ip6"] = [str(a) for a in n.ip6]
    if n.join in (Join.DISCOVER, Join.DOT1X):
        d.update(join=n.join.value, identity=n.identity, **({"password": n.password} if n.password else {}))
        if n.method is not EapMethod.MD5:
            d["method"] = n.method.value
    elif n.join is Join.MAB:
        d["join"] = n.join.value
    if n.nves:
        d["nves"] = list(n.nves)
    if n.gateway:
        d["gateway"] = str(n.gateway)
    if n.allowed:
        d["allowed"] = [str(a) for a in n.allowed]
    if not n.port_security:
        d["port_security"] = False
    return d


def _user_doc(u: AaaUser) -> dict:
    d: dict = {"network": u.network, **({"password": u.password} if u.password else {})}
    if u.method is not EapMethod.MD5:
        d["method"] = u.method.value
    for key in ("rate", "rate_up", "rate_down"):
        if getattr(u, key):
            d[key] = getattr(u, key)
    if u.session_timeout:
        d["session_timeout"] = u.session_timeout
    if u.interim:
        d["interim"] = u.interim
    if u.ip:
        d["ip"] = str(u.ip)
    if u.cos is not None:
        d["cos"] = u.cos
    return d
