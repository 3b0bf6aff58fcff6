"""The underlay accepts only its peers: who may send a VN's VXLAN (compute/addressing.py
`underlay_peers`) and the uplink's nftables guard rendered from it (agent/underlay_guard.py)."""
from __future__ import annotations

import json
import re
from dataclasses import replace

from tenet.agent.kernel.nftables import dropped
from tenet.agent.translation import render
from tenet.agent.underlay_guard import CHAINS, FLOODED, FOREIGN, TUNNELS, UNKNOWN, chains
from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import Endpoint, Tunnel
from tenet.compute.extmac import allocate
from tenet.compute.layers import with_carriers
from tenet.compute.routing import router_keys
from tenet.compute.tables import HostTables, vn_from_json, vn_to_json
from tenet.model.load import load_intent
from tenet.model.tenancy import port_name

IP = {"h1": "198.18.1.11", "h2": "198.18.1.12", "h3": "198.18.2.13", "h4": "198.18.2.14", "h5": "198.18.2.15"}
GROUP = "239.1.1.1"
DOC = {
    "name": "guard",
    "underlay": {"networks": {"pn1": {"subnet": "198.18.1.0/24"}, "pn2": {"subnet": "198.18.2.0/24"}},
                 "routers": {"r": {"networks": ["pn1", "pn2"]}}},
    "hosts": {h: {"network": "pn1" if ip.startswith("198.18.1.") else "pn2", "ip": f"{ip}/24"} for h, ip in IP.items()},
    "networks": {"m": {"vnid": 100, "bum": "multicast", "group": GROUP, "subnet": "10.1.0.0/24"},
                 "r": {"vnid": 101, "bum": "replicate", "subnet": "10.2.0.0/24"},
                 "ip": {"vnid": 102, "forwarding": "ip", "subnet": "10.3.0.0/24"},
                 "base": {"vnid": 103, "bum": "replicate", "subnet": "10.4.0.0/24"},
                 "top": {"vnid": 104, "bum": "replicate", "subnet": "10.5.0.0/24", "over": "base"}},
}
PLACED = [("m", "h1"), ("m", "h2"), ("m", "h3"), ("r", "h1"), ("r", "h4"), ("ip", "h1"), ("ip", "h3"),
          ("base", "h1"), ("base", "h3"), ("top", "h1"), ("top", "h3")]


def endpoint(i: int, vn: str, host: str, **kw) -> Endpoint:
    subnet = 1 + list(DOC["networks"]).index(vn)
    return Endpoint(vn=vn, vm=f"e{i}", nic=0, mac=f"02:00:00:00:00:{i:02x}", ip=f"10.{subnet}.0.{i + 1}/24",
                    host=host, port=port_name(f"e{i}", 0), **kw)


def tables(placed=PLACED, held=frozenset(), extra=()) -> dict[str, HostTables]:
    intent = load_intent(DOC)
    eps = with_carriers(intent, (*(endpoint(i, vn, h) for i, (vn, h) in enumerate(placed)), *extra))
    macs = allocate([e.key for e in eps] + router_keys(intent.vns, eps), {})
    return compute_tables(intent, eps, macs, held)


def chain(text: str, name: str) -> str:
    m = re.search(rf"  chain {name} {{\n(.*?)\n  }}\n", text, re.S)
    assert m, name
    return m.group(1)


def pairs(rule: str, expression: str) -> set[str]:
    m = re.search(rf"{re.escape(expression)} {{ ([^}}]*) }}", rule)
    return set(m.group(1).split(", ")) if m else set()


def test_a_vns_peers_are_every_host_implementing_it_in_every_table():
    t = tables()
    for vn, hosts in (("m", "h1 h2 h3"), ("r", "h1 h4"), ("ip", "h1 h3"), ("base", "h1 h3")):
        want = tuple(sorted(IP[h] for h in hosts.split()))
        assert {t[h].vn(vn).underlay_peers for h in hosts.split()} == {want}, vn
        assert all(t[h].vn(vn) is None for h in IP if h not in hosts.split())
    assert t["h1"].vn("top").underlay_peers == ()  # its peers are carriers on the VN beneath


def test_held_and_migrating_hosts_are_peers():
    held = tables(held=frozenset({("h5", "r")}))
    assert held["h1"].vn("r").underlay_peers == (IP["h1"], IP["h4"], IP["h5"])
    twin = endpoint(len(PLACED), "r", "h2", moving=True)
    moving = tables(extra=(twin, replace(twin, host="h4")))  # live-migrating from h2 to h4
    assert moving["h1"].vn("r").underlay_peers == (IP["h1"], IP["h2"], IP["h4"])


def test_peers_round_trip_and_tables_published_before_them_read_as_none():
    vt = tables()["h1"].vn("m")
    assert vn_from_json(vn_to_json(vt)) == vt
    old = json.loads(vn_to_json(vt))
    del old["underlay_peers"]
    assert vn_from_json(json.dumps(old)).underlay_peers == ()
    h1 = tables()["h1"]
    assert HostTables.from_json(h1.to_json()) == h1


def test_a_vni_passes_only_from_its_peers_to_us_or_its_own_group():
    h1 = tables()["h1"]
    text = render(h1, frozenset())
    hook = chain(text, "underlay")
    assert 'hook ingress device "up0" priority -310; policy accept;' in hook
    assert "meta pkttype { host, broadcast, multicast } udp dport vmap { 4789 : goto underlay_vxlan }" in hook
    rules = chain(text, "underlay_vxlan").splitlines()
    sources = pairs(rules[0], "ip saddr . @th,96,24")
    targets = pairs(rules[0], "ip daddr . @th,96,24")
    assert sources == {f"{IP['h2']} . 100", f"{IP['h3']} . 100", f"{IP['h4']} . 101", f"{IP['h3']} . 102",
                       f"{IP['h3']} . 103"}  # never from ourselves; top (104) only inside base
    assert targets == {f"{IP['h1']} . {v}" for v in (100, 101, 102, 103)} | {f"{GROUP} . 100"}  # r: not m's group
    assert rules[0].endswith(" accept")
    assert rules[1].strip() == f"@th,96,24 {{ 100, 101, 102, 103 }} goto {FOREIGN}"
    assert rules[2].strip() == f"meta pkttype multicast ip daddr != {{ {GROUP} }} goto {FLOODED}"
    assert rules[3].strip() == f"goto {UNKNOWN}"
    assert chain(text, UNKNOWN).strip() == chain(text, FOREIGN).strip() == "counter drop"
    assert TUNNELS not in text


def test_a_vn_alone_here_takes_its_vxlan_from_nobody():
    h2 = tables(placed=[("m", "h2")])["h2"]
    rules = chain(render(h2, frozenset()), "underlay_vxlan").splitlines()
    assert [r.strip() for r in rules] == [f"@th,96,24 {{ 100 }} goto {FOREIGN}",
                                          f"meta pkttype multicast ip daddr != {{ {GROUP} }} goto {FLOODED}",
                                          f"goto {UNKNOWN}"]
    r = tables(placed=[("r", "h4")])["h4"]  # no group of ours: every multicast is someone else's
    assert "    meta pkttype multicast goto underlay_flooded\n" in render(r, frozenset())


def test_tables_published_before_peers_keep_flowing_checked_by_destination():
    h1 = tables()["h1"]
    old = replace(h1, vns=tuple(replace(v, underlay_peers=()) if v.vn == "m" else v for v in h1.vns))
    rules = chain(render(old, frozenset()), "underlay_vxlan").splitlines()
    assert not any(". 100" in r for r in pairs(rules[0], "ip saddr . @th,96,24"))
    assert rules[1].strip() == f"ip daddr . @th,96,24 {{ {IP['h1']} . 100, {GROUP} . 100 }} accept"


def test_an_access_tunnel_takes_its_session_vni_from_its_tes_alone():
    tes = endpoint(40, "r", "h1", tunnel=Tunnel(port="tv1", remote="198.18.7.7", vni=7001, udp_port=4790))
    text = render(tables(extra=(tes,))["h1"], frozenset())
    assert "udp dport vmap { 4789 : goto underlay_vxlan, 4790 : goto underlay_tunnels }" in chain(text, "underlay")
    assert chain(text, TUNNELS).splitlines() == [
        "    ip saddr . udp dport . @th,96,24 { 198.18.7.7 . 4790 . 7001 } accept", "    counter drop"]
    on_4789 = replace(tes, vm="e41", mac="02:00:00:00:00:41", tunnel=replace(tes.tunnel, udp_port=4789, vni=7002))
    text = render(tables(extra=(on_4789,))["h1"], frozenset())
    assert TUNNELS not in text  # a tunnel on the VNs' port is checked among them, first
    assert "ip saddr . udp dport . @th,96,24 { 198.18.7.7 . 4789 . 7002 } accept" in chain(text, "underlay_vxlan")


def test_no_vn_no_guard():
    assert chains(tables()["h5"]) == []
    assert render(tables()["h5"], frozenset()) == ""


def test_the_guards_drops_are_counted_by_chain():
    listing = render(tables()["h1"], frozenset()).replace("counter drop", "counter packets 7 bytes 700 drop")
    counts = dropped(listing)
    assert {c: counts[c] for c in (UNKNOWN, FOREIGN, FLOODED)} == {UNKNOWN: 7, FOREIGN: 7, FLOODED: 7}
    assert set(CHAINS) == {UNKNOWN, FOREIGN, TUNNELS, FLOODED}
