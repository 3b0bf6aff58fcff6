"""`vrouters:` and `vlinks:` of a topology document -> overlay intent (docs/topology.md). Pure.

Each virtual link becomes a VN of its own (head-end replication: it has two ends) and each
virtual router a `Vm` with `router` set, its declared NICs first and then one NIC per link,
addressed from the link's subnet. The usual VM checks (hosts, MACs, IPs per VN) apply to them.
"""
from __future__ import annotations

from typing import Any

from tenet.model.fabric import Host, PhysicalNetwork
from tenet.model.load import (DEFAULT_TENANT, NODE_NAME, _net, _nic_doc, _Problems, _vms, claim_vnid, generated_mac,
                              known, rate_bps)
from tenet.model.overlay import VirtualLink, VirtualRouter, components
from tenet.model.problems import Kind, declared as declared_names
from tenet.model.tenancy import Bum, Intent, VirtualNetwork, Vm

STATES = ("running", "paused", "stopped")


def load_overlay(p: _Problems, doc: dict, networks: dict[str, PhysicalNetwork], hosts: list[Host],
                 vns: list[VirtualNetwork], tenants: list[str], seen: tuple[dict, dict]
                 ) -> tuple[list[VirtualRouter], list[VirtualLink], list[Vm], list[VirtualNetwork]]:
    hypervisors = {h.name: h for h in hosts if not h.switch}
    routers: dict[str, VirtualRouter] = {}
    declared: dict[str, list] = {}
    moving: dict[str, str] = {}
    for name, spec in p.names(doc.get("vrouters"), "vrouters").items():
        path = f"vrouters.{name}"
        spec = p.mapping(spec, path, "vrouter")
        tenant, state = spec.get("tenant", DEFAULT_TENANT), spec.get("state", "running")
        if not known(spec.get("host"), hypervisors):
            p.missing(Kind.HOST, spec.get("host"), f"{path}.host",
                      f"no hypervisor host named {spec.get('host')!r}" if spec.get("host") else "required")
        elif not isinstance(tenant, str) or not NODE_NAME.match(tenant):
            p.add(f"{path}.tenant", f"not a tenant name: {tenant!r}")
        elif state not in STATES:
            p.add(f"{path}.state", f"must be one of {', '.join(STATES)}, not {state!r}")
        elif not isinstance(spec.get("nics", []), list):
            p.add(f"{path}.nics", "must be a list of NICs")
        else:
            routers[name] = VirtualRouter(name, tenant, spec["host"], state)
            declared[name] = list(spec.get("nics", []))
            moving[name] = spec.get("migrating_to", "")
            if tenant not in tenants:
                tenants.append(tenant)
    p.reject(Kind.VROUTER, declared_names(doc.get("vrouters")) - set(routers))
    links = _links(p, doc, routers, vns)
    _check_connected(p, routers, links, declared)
    _check_capacity(p, networks, hypervisors, routers, links)
    link_vns = [VirtualNetwork(vl.name, vnid, vl.tenant, vl.subnet, Bum.REPLICATE, None) for vl, vnid in links]
    by_name = {v.name: v for v in vns + link_vns}
    vr_docs = {
        name: {"host": vr.host, "state": vr.state, **({"migrating_to": moving[name]} if moving.get(name) else {}),
               "nics": declared[name] + [
            {"network": vl.name, "mac": link_mac(name, vl.name), "ip": str(vl.address(name))}
            for vl, _ in links if name in vl.ends]}
        for name, vr in routers.items()
    }
    for name, vr in routers.items():
        for i, nic in enumerate(declared[name]):
            vn = by_name.get(nic.get("network")) if isinstance(nic, dict) and known(nic.get("network"), by_name) else None
            if vn is not None and vn.tenant != vr.tenant:
                p.add(f"vrouters.{name}.nics[{i}].network", f"{vn.name} belongs to tenant {vn.tenant}, not "
                      f"{vr.tenant}: a virtual router routes only between its own tenant's VNs")
    vms = _vms(p, {"vrouters": vr_docs}, set(hypervisors), by_name, section="vrouters", seen=seen)
    return list(routers.values()), [vl for vl, _ in links], vms, link_vns


def link_mac(vr: str, link: str) -> str:
    """A link NIC's MAC, from the router and the link, not from the NIC's place among the
    router's NICs: destroying another link renumbers the NICs in place, and the MAC the VR's
    interface carries (and its port security is keyed on) must stay what it was."""
    return generated_mac(f"{vr}@{link}", 0)


def _links(p: _Problems, doc: dict, routers: dict[str, VirtualRouter],
           vns: list[VirtualNetwork]) -> list[tuple[VirtualLink, int]]:
    vnids = {v.vnid: v.name for v in vns}
    out: list[tuple[VirtualLink, int]] = []
    for name, spec in p.names(doc.get("vlinks"), "vlinks").items():
        path = f"vlinks.{name}"
        spec = p.mapping(spec, path, "vlink")
        for key in ("delay", "loss"):
            if key in spec:
                p.add(f"{path}.{key}", f"{key} needs tc netem, which this kernel lacks: tenet cannot emulate it here")
        ends = spec.get("between")
        if not (isinstance(ends, list) and len(ends) == 2 and ends[0] != ends[1]):
            p.add(f"{path}.between", "a virtual link joins exactly two distinct virtual routers")
            continue
        missing = [e for e in ends if not known(e, routers)]
        if missing:
            p.missing(Kind.VROUTER, missing[0], f"{path}.between")
            continue
        a, b = routers[ends[0]], routers[ends[1]]
        if a.tenant != b.tenant:
            p.add(f"{path}.between", f"{a.name} (tenant {a.tenant}) and {b.name} (tenant {b.tenant}): a link stays in one tenant")
            continue
        if name in {v.name for v in vns}:
            p.add(path, f"a virtual network is already named {name!r} (a link is a VN of its own)")
            continue
        subnet = _net(p, spec.get("subnet"), f"{path}.subnet") if "subnet" in spec else None
        if "subnet" not in spec:
            p.add(f"{path}.subnet", "required: the link's two addresses come from it (e.g. a /30)")
        if subnet is None:
            continue
        if subnet.num_addresses < 4:
            p.add(f"{path}.subnet", f"{subnet} has fewer than two host addresses")
            continue
        vnid = claim_vnid(p, spec.get("vnid"), f"{path}.vnid", name, vnids)
        if vnid is None:
            continue
        guarantee = rate_bps(p, spec.get("guarantee"), f"{path}.guarantee")
        limit = rate_bps(p, spec.get("limit"), f"{path}.limit")
        if guarantee and limit and guarantee > limit:
            p.add(f"{path}.guarantee", f"{spec['guarantee']} is over the link's limit {spec['limit']}")
            continue
        out.append((VirtualLink(name, a.tenant, (a.name, b.name), subnet, guarantee, limit), vnid))
    return out


def _check_connected(p: _Problems, routers: dict[str, VirtualRouter], links: list[tuple[VirtualLink, int]],
                     declared: dict[str, list]) -> None:
    """Berl's model: a tenant's virtual network of VRs and VLs is one connected graph. Two VRs
    with NICs on one VN are joined by it as much as by a link (a copy joins its original so)."""
    on = {n: {nic.get("network") for nic in declared[n] if isinstance(nic, dict) and isinstance(nic.get("network"), str)}
          for n in routers}
    for tenant in dict.fromkeys(vr.tenant for vr in routers.values()):
        names = [n for n, vr in routers.items() if vr.tenant == tenant]
        shared = [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if on[a] & on[b]]
        comps = components(names, [vl.ends for vl, _ in links if vl.tenant == tenant] + shared)
        for comp in comps[1:]:
            for n in sorted(comp):
                p.add(f"vrouters.{n}", f"not joined to {names[0]} by virtual links or a shared VN: "
                                       f"tenant {tenant}'s virtual routers must form one connected graph")


def crossed_networks(vl: VirtualLink, routers: dict[str, VirtualRouter], hosts: dict[str, Host]) -> set[str]:
    """The physical networks a link's traffic leaves hosts on: none when both ends share a host."""
    a, b = (hosts[routers[e].host] for e in vl.ends)
    return set() if a.name == b.name else {a.network, b.network}


def _check_capacity(p: _Problems, networks: dict[str, PhysicalNetwork], hosts: dict[str, Host],
                    routers: dict[str, VirtualRouter], links: list[tuple[VirtualLink, int]]) -> None:
    load: dict[str, list[VirtualLink]] = {}
    for vl, _ in links:
        crossed = crossed_networks(vl, routers, hosts)
        if vl.guarantee_bps and not crossed:
            p.add(f"vlinks.{vl.name}.guarantee", "both ends are on one host: nothing physical to guarantee")
        for n in sorted(crossed):
            if vl.guarantee_bps and not networks[n].capacity_bps:
                p.add(f"vlinks.{vl.name}.guarantee", f"physical network {n} has no capacity to guarantee from")
            elif vl.limit_bps and not networks[n].capacity_bps:  # each end shapes only what its host sends
                p.add(f"vlinks.{vl.name}.limit", f"physical network {n} has no capacity, so its hosts' uplinks "
                                                 f"are unshaped: the limit would not hold on what they send")
            if vl.guarantee_bps:
                load.setdefault(n, []).append(vl)
    for n, vls in load.items():
        cap, total = networks[n].capacity_bps, sum(vl.guarantee_bps for vl in vls)
        if cap and total > cap:
            parts = ", ".join(f"{vl.name} {vl.guarantee_bps / 1e6:g}" for vl in vls)
            p.add(f"underlay.networks.{n}.capacity", f"guarantees ({parts}) total {total / 1e6:g} Mbit/s, "
                                                    f"over its {cap / 1e6:g} Mbit/s")


def overlay_doc(intent: Intent) -> dict[str, Any]:
    """The `vrouters:` and `vlinks:` sections of the canonical document."""
    if not intent.vrouters:
        return {}
    links = {vl.name for vl in intent.vlinks}
    vms = {vm.name: vm for vm in intent.vms if vm.router}
    vnid = {v.name: v.vnid for v in intent.vns}
    return {
        "vrouters": {
            vr.name: {"host": vr.host, "tenant": vr.tenant, **({"state": vr.state} if vr.state != "running" else {}),
                      **({"migrating_to": vms[vr.name].migrating_to} if vms[vr.name].migrating_to else {}),
                      "nics": [_nic_doc(n) for n in vms[vr.name].nics if n.network not in links]}
            for vr in intent.vrouters
        },
        "vlinks": {
            vl.name: {"between": list(vl.ends), "vnid": vnid[vl.name], "subnet": str(vl.subnet),
                      **({"guarantee": f"{vl.guarantee_bps}bit"} if vl.guarantee_bps else {}),
                      **({"limit": f"{vl.limit_bps}bit"} if vl.limit_bps else {})}
            for vl in intent.vlinks
        },
    }
