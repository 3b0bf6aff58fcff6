"""The lab's routers run FRR (Debian's frr): zebra, ospfd for unicast, pimd for the VNs'
multicast groups. Pure: configuration text and command lines from the plan's routers.

The underlay is thus one that no one here wrote: any graph of physical networks and routers
(chains, rings, leaf-spine with several equal paths) routes as a real one would. OSPF runs
with sub-second hellos (dead interval 1 s) and an immediate SPF, so a failed router is routed
around within a few seconds; equal-cost paths are installed as multipath routes. PIM sparse
mode forwards a VN's group only toward networks where a host joined it (IGMP), with an
anycast rendezvous point shared (MSDP) by the most central routers, so no one router is a
single point of failure for the VNs' broadcasts.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from ipaddress import IPv4Interface, IPv4Network
from pathlib import Path

FRR = Path("/usr/lib/frr")
DAEMONS = ("zebra", "ospfd", "pimd")
USER = "frr"  # the Debian package's: the daemons refuse to run as root without its vty group
MULTICAST = "224.0.0.0/4"
MAX_PATHS = 16
MESH = "tenet"  # the MSDP mesh group of the anycast RP routers
ANYCAST_RANGE = "198.19.255.0/24"  # the RP's anycast address: the first /32 from the top no network holds  # equal-cost next hops OSPF installs  # every VN group, wherever the topology puts it


@dataclass(frozen=True)
class RouterPort:
    dev: str
    address: IPv4Interface
    network: str


@dataclass(frozen=True)
class RouterConfig:
    name: str
    netns: str
    ports: tuple[RouterPort, ...]
    rp: str  # the rendezvous point: the anycast address of the routers in `rp_peers`, or the one's id
    rp_peers: tuple[str, ...] = ()  # router ids of the RP routers (this one's included if it is one)

    @property
    def router_id(self) -> str:
        return router_id(self.ports)

    @property
    def is_rp(self) -> bool:
        return self.router_id in self.rp_peers

    @property
    def anycast(self) -> bool:
        """An RP that shares its address with other RPs (on lo, announced by OSPF, MSDP between
        them). A lone RP is one at its own router id: FRR then forwards a new source's first
        packets at once (with the address on lo it dropped the first ones: tests/lab/test_ipv6_access.py)."""
        return self.is_rp and len(self.rp_peers) > 1


def router_id(ports: tuple[RouterPort, ...]) -> str:
    return str(min(p.address.ip for p in ports))


def routers_on(routers: dict[str, tuple[RouterPort, ...]]) -> dict[str, set[str]]:
    """network -> the routers with a port on it: the graph both searches below walk."""
    nets: dict[str, set[str]] = {}
    for name, ports in routers.items():
        for p in ports:
            nets.setdefault(p.network, set()).add(name)
    return nets


def rendezvous(routers: dict[str, tuple[RouterPort, ...]]) -> tuple[str, ...]:
    """The routers that share the anycast RP: those with the fewest hops to the farthest
    router, then the most ports — the spines of a leaf-spine fabric, the middle of a chain.
    Each source registers with, and each receiver joins toward, the nearest of them; MSDP
    between them tells each the others' sources; when one dies the rest carry on."""
    nets = routers_on(routers)

    def eccentricity(start: str) -> int:
        seen, queue, far = {start}, deque([(start, 0)]), 0
        while queue:
            r, d = queue.popleft()
            far = max(far, d)
            for p in routers[r]:
                for other in nets[p.network] - seen:
                    seen.add(other)
                    queue.append((other, d + 1))
        return far if len(seen) == len(routers) else len(routers) + far

    key = {r: (eccentricity(r), -len(routers[r])) for r in routers}
    best = min(key.values())
    return tuple(sorted(r for r in routers if key[r] == best))


def equal_paths(routers: dict[str, tuple[RouterPort, ...]]) -> dict[str, dict[str, int]]:
    """router -> network it is not on -> how many next hops OSPF installs toward it, every
    interface costing the same: one per (shared network, neighbour) on a shortest path. The lab
    waits for exactly these, so `up` means converged, equal-cost multipath included."""
    nets = routers_on(routers)
    hops: dict[str, dict[str, int]] = {r: {} for r in routers}  # routers traversed to reach a net
    for net, attached in nets.items():
        queue = deque(attached)
        for r in attached:
            hops[r][net] = 1
        while queue:
            r = queue.popleft()
            for p in routers[r]:
                for other in nets[p.network]:
                    if net not in hops[other]:
                        hops[other][net] = hops[r][net] + 1
                        queue.append(other)
    out: dict[str, dict[str, int]] = {}
    for r, ports in routers.items():
        out[r] = {
            net: min(MAX_PATHS, sum(1 for p in ports for x in nets[p.network]
                                    if x != r and hops[x].get(net) == d - 1))
            for net, d in hops[r].items() if d > 1
        }
    return out


def anycast_address(subnets: list[IPv4Network]) -> str:
    for a in reversed(list(IPv4Network(ANYCAST_RANGE).hosts())):
        if not any(a in n for n in subnets):
            return str(a)
    raise ValueError(f"no free anycast RP address in {ANYCAST_RANGE}")


def zebra_conf(r: RouterConfig) -> str:
    return f"hostname {r.name}\nlog stdout informational\n!\n"


def ospfd_conf(r: RouterConfig) -> str:
    lines = [f"hostname {r.name}", "log stdout informational", "!"]
    for p in r.ports:
        lines += [f"interface {p.dev}", " ip ospf area 0",
                  " ip ospf dead-interval minimal hello-multiplier 4", "!"]
    if r.anycast:  # the anycast RP address on lo, announced like any network
        lines += ["interface lo", " ip ospf area 0", "!"]
    lines += ["router ospf", f" ospf router-id {r.router_id}", " timers throttle spf 0 50 500",
              f" maximum-paths {MAX_PATHS}", "!"]
    return "\n".join(lines) + "\n"


def pimd_conf(r: RouterConfig) -> str:
    lines = [f"hostname {r.name}", "log stdout informational", f"ip pim rp {r.rp} {MULTICAST}",
             "ip pim join-prune-interval 5", "!"]
    for p in r.ports:
        lines += [f"interface {p.dev}", " ip pim", " ip igmp", " ip igmp query-interval 5",
                  " ip igmp last-member-query-interval 2", "!"]
    if r.anycast:  # MSDP mesh: a source registered here is announced to the other RPs
        lines += ["interface lo", " ip pim", "!", f"ip msdp mesh-group {MESH} source {r.router_id}"]
        lines += [f"ip msdp mesh-group {MESH} member {a}" for a in r.rp_peers if a != r.router_id]
    return "\n".join(lines) + "\n"


CONFIGS = {"zebra": zebra_conf, "ospfd": ospfd_conf, "pimd": pimd_conf}


def argv(daemon: str, run_dir: Path) -> list[str]:
    """A daemon in the foreground (the lab records its PID), every path in the router's own
    directory (owned by FRR's user, which the daemons drop to), no TCP vty (vtysh reaches it by
    `vtysh --vty_socket <run_dir>`)."""
    return [str(FRR / daemon), "-f", str(run_dir / f"{daemon}.conf"), "-i", str(run_dir / f"{daemon}.pid"),
            "-z", str(run_dir / "zserv.api"), "--vty_socket", str(run_dir), "-u", USER, "-g", USER,
            "-P", "0", "--log", "stdout"]
