"""Static routes of virtual routers over their overlay graph. Pure.

Each VR reaches every subnet attached to another VR of its tenant by the shortest path of
virtual links (ties broken by name), so the Router OS needs no routing daemon and the
overlay can be reshaped (links re-rated, VRs moved) without touching a VR's configuration.
"""
from __future__ import annotations

from collections import deque
from ipaddress import IPv4Address, IPv4Network

from tenet.model.tenancy import Intent

Route = tuple[IPv4Network, IPv4Address]  # destination, next hop


def vr_routes(intent: Intent) -> dict[str, tuple[Route, ...]]:
    nics = {vm.name: vm.nics for vm in intent.vms if vm.router}
    attached = {vr: {n.ip.network for n in ns if n.ip} for vr, ns in nics.items()}
    adj: dict[str, list[tuple[str, IPv4Address]]] = {vr: [] for vr in nics}
    for vl in intent.vlinks:
        a, b = vl.ends
        adj[a].append((b, vl.address(b).ip))
        adj[b].append((a, vl.address(a).ip))
    out = {}
    for vr in sorted(nics):
        first: dict[str, IPv4Address] = {}
        todo = deque([vr])
        routes: dict[IPv4Network, IPv4Address] = {}
        while todo:
            x = todo.popleft()
            for y, via in sorted(adj[x]):
                if y != vr and y not in first:
                    first[y] = first.get(x, via)
                    todo.append(y)
                    for net in sorted(attached[y] - attached[vr]):
                        routes.setdefault(net, first[y])
        out[vr] = tuple(sorted(routes.items()))
    return out
