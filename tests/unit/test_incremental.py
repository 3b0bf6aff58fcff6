"""Incremental tables (compute/incremental.py) against the full recompute, after every step of
random change sequences: endpoints joining, leaving, moving and changing rate; VNs added,
removed and switching BUM mode; hosts added, removed and moved between physical networks;
held instances; a virtual router's state and a network's capacity (the uplinks' QoS); live
migrations starting (a NIC at two hosts) and committing."""
from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from tenet.compute.addressing import compute_tables, members_by_vn
from tenet.compute.endpoints import Endpoint
from tenet.compute.extmac import allocate
from tenet.compute.incremental import Tables, head
from tenet.compute.layers import with_carriers
from tenet.compute.routing import router_keys
from tenet.model.errors import IntentError
from tenet.model.load import load_intent
from tenet.model.tenancy import port_name

HOSTS = [f"h{i}" for i in range(6)]
NETWORKS = ["pn1", "pn2", "pn3"]
VNS = {  # name -> (spec, its subnet's first three octets)
    "m": ({"vnid": 100, "bum": "multicast", "subnet": "10.1.0.0/24"}, "10.1.0"),
    "r": ({"vnid": 101, "bum": "replicate", "subnet": "10.2.0.0/24"}, "10.2.0"),
    "ip": ({"vnid": 102, "forwarding": "ip", "subnet": "10.3.0.0/24"}, "10.3.0"),
    "base": ({"vnid": 103, "bum": "replicate", "subnet": "10.4.0.0/24"}, "10.4.0"),
    "top": ({"vnid": 104, "bum": "replicate", "subnet": "10.5.0.0/24", "over": "base"}, "10.5.0"),
    "x": ({"vnid": 105, "bum": "replicate", "subnet": "10.6.0.0/24"}, "10.6.0"),
}


def base_doc() -> dict:
    return {
        "name": "inc",
        "underlay": {"networks": {"pn1": {"subnet": "198.18.1.0/24", "capacity": "100mbit"},
                                  "pn2": {"subnet": "198.18.2.0/24"}, "pn3": {"subnet": "198.18.3.0/24"}},
                     "routers": {"r": {"networks": NETWORKS}}},
        "hosts": {h: home(h, NETWORKS[i % 2]) for i, h in enumerate(HOSTS)},
        "networks": {n: dict(spec) for n, (spec, _) in VNS.items()},
        "vrouters": {"v1": {"host": "h0", "nics": [{"network": "r", "ip": "10.2.0.250/24"}]},
                     "v2": {"host": "h1", "nics": [{"network": "m", "ip": "10.1.0.250/24"}]}},
        "vlinks": {"vl": {"between": ["v1", "v2"], "vnid": 200, "subnet": "10.255.0.0/30"}},
    }


def home(host: str, network: str) -> dict:
    """A fixed address, so that the hosts' order alone can change (carriers follow it)."""
    return {"network": network, "ip": f"198.18.{network[-1]}.{10 + HOSTS.index(host)}/24"}


vn_names = st.sampled_from(list(VNS))
hosts = st.sampled_from(HOSTS)
movable = st.sampled_from(HOSTS[2:])  # h0, h1 hold the virtual routers
rates = st.sampled_from([0, 1_000_000, 5_000_000])
step = st.one_of(
    st.tuples(st.just("add"), vn_names, hosts, rates),
    st.tuples(st.just("add"), vn_names, hosts, rates),
    st.tuples(st.just("remove"), st.integers(0, 99)),
    st.tuples(st.just("move"), st.integers(0, 99), hosts),
    st.tuples(st.just("rate"), st.integers(0, 99), rates),
    st.tuples(st.just("bum"), st.sampled_from(["m", "r", "x"])),
    st.tuples(st.just("vnid"), st.sampled_from(["base", "r"])),
    st.tuples(st.just("vn"), st.sampled_from(["x", "m"])),
    st.tuples(st.just("host"), movable),
    st.tuples(st.just("host"), movable),
    st.tuples(st.just("rehome"), movable, st.sampled_from(NETWORKS)),
    st.tuples(st.just("held"), hosts, vn_names),
    st.tuples(st.just("vrouter"), st.sampled_from(["v1", "v2"])),
    st.tuples(st.just("capacity"),),
    st.tuples(st.just("migrate"), st.integers(0, 99), hosts),
    st.tuples(st.just("migrate"), st.integers(0, 99), hosts),
)
BRIDGED = {"m", "r", "x", "base"}  # a live migration doubles a NIC only on bridged VNs over the underlay


class World:
    """The inputs a controller would hold: a document, reported endpoints, allocations, holds."""

    def __init__(self) -> None:
        self.doc = base_doc()
        self.intent = load_intent(self.doc)
        self.endpoints: list[Endpoint] = []
        self.held: frozenset[tuple[str, str]] = frozenset()
        self.macs: dict = {}
        self.members: dict[str, tuple[Endpoint, ...]] = {}
        self.serial = 0

    def apply(self, change: tuple) -> None:
        kind, *args = change
        eps = self.endpoints
        if kind == "add":
            vn, host, rate = args
            i, self.serial = self.serial, self.serial + 1
            eps.append(Endpoint(vn=vn, vm=f"e{i}", nic=0, mac=f"02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}",
                                ip=f"{VNS[vn][1]}.{i + 1}/24", host=host, port=port_name(f"e{i}", 0),
                                rate_down_bps=rate, rate_up_bps=rate))
        elif kind in ("remove", "move", "rate") and eps:
            k = args[0] % len(eps)
            if kind == "remove":
                eps.pop(k)
            elif kind == "move":
                eps[k] = replace(eps[k], host=args[1])
            else:
                eps[k] = replace(eps[k], rate_down_bps=args[1])
        elif kind == "migrate" and eps:  # a live migration starts (a twin at `host`) or commits (one stays)
            k = args[0] % len(eps)
            ep = eps[k]
            if ep.moving:
                eps[:] = [e for e in eps if not (e.key == ep.key and e is not ep)]
                eps[eps.index(ep)] = replace(ep, moving=False)
            elif ep.vn in BRIDGED and ep.host != args[1]:
                eps[k] = replace(ep, moving=True)
                eps.append(replace(ep, host=args[1], moving=True))
        elif kind == "held":
            self.held = self.held ^ {(args[0], args[1])}
        else:
            self.edit(kind, args)

    def edit(self, kind: str, args: list) -> None:
        doc = copy.deepcopy(self.doc)
        if kind == "bum":
            spec = doc["networks"].get(args[0])
            if spec is None or args[0] == "base":
                return
            spec["bum"] = "replicate" if spec.get("bum") == "multicast" else "multicast"
        elif kind == "vnid":  # the VN beneath `top`: its carriers carry the VN-ID
            spec = doc["networks"][args[0]]
            spec["vnid"] = VNS[args[0]][0]["vnid"] + (10 if spec["vnid"] == VNS[args[0]][0]["vnid"] else 0)
        elif kind == "vn":
            if args[0] in doc["networks"]:
                del doc["networks"][args[0]]
                if args[0] == "m":  # v2 has a NIC on it: the router and its link go too
                    del doc["vrouters"]["v2"], doc["vlinks"]["vl"]
            else:
                doc["networks"][args[0]] = dict(VNS[args[0]][0])
                if args[0] == "m":
                    doc["vrouters"]["v2"], doc["vlinks"]["vl"] = base_doc()["vrouters"]["v2"], base_doc()["vlinks"]["vl"]
        elif kind == "host":
            if args[0] in doc["hosts"]:
                del doc["hosts"][args[0]]
            else:
                doc["hosts"][args[0]] = home(args[0], "pn3")
        elif kind == "rehome":
            if args[0] in doc["hosts"]:
                doc["hosts"][args[0]] = home(args[0], args[1])
        elif kind == "vrouter":
            vr = doc["vrouters"].get(args[0])
            if vr is None:
                return
            vr["state"] = "paused" if vr.get("state", "running") == "running" else "running"
        elif kind == "capacity":
            pn1 = doc["underlay"]["networks"]["pn1"]
            pn1["capacity"] = "50mbit" if pn1["capacity"] == "100mbit" else "100mbit"
        try:
            self.intent = load_intent(doc)
        except IntentError:
            return
        self.doc = doc

    def inputs(self) -> tuple[tuple[Endpoint, ...], dict]:
        """The endpoints as the controller sees them (only VNs in the intent, carriers added)
        and the members by VN, the previous tuple kept for a VN whose members did not change."""
        vns = {v.name for v in self.intent.vns}
        hosts = {h.name for h in self.intent.fabric.hosts}
        eps = with_carriers(self.intent, tuple(e for e in self.endpoints if e.vn in vns and e.host in hosts))
        self.macs = allocate([e.key for e in eps] + router_keys(self.intent.vns, eps), self.macs)
        fresh = members_by_vn(eps)
        self.members = {vn: self.members[vn] if self.members.get(vn) == t else t for vn, t in fresh.items()}
        return eps, self.members


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=1, max_size=50))
@example([("add", "top", "h3", 0), ("add", "top", "h4", 0), ("host", "h2")])  # carriers follow the hosts' order
@example([("held", "h2", "r"), ("host", "h2"), ("host", "h2")])  # a held instance on a host that returns
@example([("add", "top", "h2", 0), ("add", "top", "h3", 0), ("vnid", "base")])  # the VN beneath changes
@pytest.mark.parametrize("hinted", [False, True], ids=["diffed", "hinted"])
def test_incremental_equals_the_full_recompute_after_every_change(hinted, changes):
    """`hinted`: told which VNs' members changed, as the controller does, instead of diffing them all."""
    world, engine = World(), Tables()
    before: dict = {}
    last: dict = {}
    for change in [("add", "r", "h0", 0), *changes]:
        world.apply(change)
        eps, members = world.inputs()
        vns = {vn for vn in members.keys() | last.keys() if members.get(vn) != last.get(vn)} if hinted else None
        last = dict(members)
        changed = engine.update(world.intent, members, world.macs, world.held, vns=vns)
        full = compute_tables(world.intent, eps, world.macs, world.held)
        assert engine.tables == full, change
        assert_underlay_peers(full)
        for h in before.keys() | full.keys():
            if h not in full:
                assert h in changed.removed_hosts and h in changed.hosts, (change, h)
                continue
            if h not in before or head(before[h]) != head(full[h]):
                assert h in changed.hosts, (change, h)
            old = {t.vn: t for t in before[h].vns} if h in before else {}
            new = {t.vn: t for t in full[h].vns}
            for vn in old.keys() | new.keys():
                if old.get(vn) != new.get(vn):
                    assert (h, vn) in changed.instances, (change, h, vn)
        assert not changed.removed_hosts - (before.keys() - full.keys())
        before = full


def assert_underlay_peers(full: dict) -> None:
    """Every table of a VN over the underlay names the same peers: the addresses of exactly the
    hosts holding a table of it (a layered VN's come from its carriers, not the underlay)."""
    at: dict[str, set[str]] = {}
    for t in full.values():
        for v in t.vns:
            at.setdefault(v.vn, set()).add(t.underlay_ip)
    for t in full.values():
        for v in t.vns:
            assert v.underlay_peers == (() if v.carrier else tuple(sorted(at[v.vn]))), (t.host, v.vn)


def test_an_unchanged_input_changes_nothing():
    world, engine = World(), Tables()
    for change in [("add", "r", "h0", 0), ("add", "r", "h2", 0), ("add", "top", "h3", 0), ("add", "ip", "h4", 0)]:
        world.apply(change)
    eps, members = world.inputs()
    first = engine.update(world.intent, members, world.macs, world.held)
    assert first.hosts == {h.name for h in world.intent.fabric.hosts}
    again = engine.update(world.intent, dict(members), dict(world.macs), frozenset(world.held))
    assert again.hosts == again.instances == again.removed_hosts == frozenset()


def test_one_endpoint_changes_only_its_vn():
    world, engine = World(), Tables()
    for change in [("add", "r", "h0", 0), ("add", "m", "h2", 0), ("add", "m", "h3", 0), ("add", "r", "h4", 0)]:
        world.apply(change)
    engine.update(world.intent, world.inputs()[1], world.macs, world.held)
    world.apply(("add", "r", "h5", 0))
    changed = engine.update(world.intent, world.inputs()[1], world.macs, world.held)
    assert {vn for _, vn in changed.instances} == {"r"} and changed.hosts == {"h5"}
