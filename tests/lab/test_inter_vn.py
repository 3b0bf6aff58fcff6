"""Routing between VNs (seed 002, FIG. 5): VM R in N4 reaches VM P in N1 through virtual
router 508 inside host5, in the seed's own datacenter (examples/datacenter.yaml)."""
from __future__ import annotations

from pathlib import Path

import pytest

from capture import Capture
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).parents[2] / "examples" / "datacenter.yaml"


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


def test_r_reaches_p_through_router_508_without_touching_the_wire(lab):
    """R → 508 → P never leaves host5: no translation, no encapsulation (the seed's 504, 506)."""
    with Capture(lab, "host5", "up0", "icmp or udp port 4789") as wire, \
            Capture(lab, "vr508", "eth1", "icmp") as from_r, Capture(lab, "vr508", "eth0", "icmp") as to_p:
        ping = lab.exec("R", "ping", "-c3", "-i0.2", "-W1", "10.1.0.16")
        assert ping.returncode == 0, ping.stdout
    assert "ttl=63" in ping.stdout  # one routed hop
    assert {tuple(r) for r in from_r.fields("icmp.type == 8", "ip.src", "ip.dst")} == {("10.4.0.18", "10.1.0.16")}
    assert {tuple(r) for r in to_p.fields("icmp.type == 8", "ip.src", "ip.dst")} == {("10.4.0.18", "10.1.0.16")}
    assert wire.fields("icmp", "frame.number") == []  # (only the ARP broadcasts flood to N1/N4 peers)


def test_a_remote_member_of_n4_is_routed_by_508_too(lab):
    """K (N4, host1) reaches M (N1, host3), all three hosts on PN2: N4 carries K's packet to
    508 in host5 translated, 508 routes it, N1 carries it on to host3 translated again."""
    lab.exec("K", "ip", "route", "replace", "default", "via", "10.4.0.254", check=True)
    lab.exec("M", "ip", "route", "replace", "default", "via", "10.1.0.254", check=True)
    with Capture(lab, "host5", "up0", "icmp") as wire:
        assert lab.exec("K", "ping", "-c2", "-i0.2", "-W1", "10.1.0.13").returncode == 0
    rows = wire.fields("icmp.type == 8", "eth.src", "eth.dst", "ip.src", "ip.dst")
    assert len(rows) == 4  # each request twice on host5's wire: in on N4, out on N1
    assert all(r[0].startswith("06:74:6e:") and r[1].startswith("06:74:6e:") for r in rows)  # external MACs
    assert {tuple(r[2:]) for r in rows} == {("10.4.0.11", "10.1.0.13")}


def test_other_tenants_get_no_route_through_508(lab):
    """N (globex, N3) has no NIC on 508's VNs: even aimed at 508's addresses, nothing arrives."""
    lab.exec("N", "ip", "route", "replace", "10.1.0.0/24", "dev", "eth0", check=True)
    assert lab.exec("N", "ping", "-c2", "-i0.2", "-W1", "10.1.0.16").returncode != 0
    assert lab.exec("N", "ping", "-c2", "-i0.2", "-W1", "10.1.0.254").returncode != 0


def test_copy_forwards_with_new_macs_and_destroy_removes_it(lab):
    """vr509, a copy of 508 on host3: the same VNs, new MACs, the lowest free addresses; it
    routes K → M at once. Destroyed, its namespace and its table rows are gone."""
    vrs = lab.vrouters
    intent = vrs.copy("vr508", "vr509", host="host3")
    copy = next(vm for vm in intent.vms if vm.name == "vr509")
    assert [(n.network, str(n.ip)) for n in copy.nics] == [("N1", "10.1.0.1/24"), ("N4", "10.4.0.1/24")]
    assert {n.mac for n in copy.nics}.isdisjoint(lab.mac("vr508", i) for i in (0, 1))
    assert lab.exec("vr509", "ip", "-br", "link", "show", "eth0").stdout.split()[2] == copy.nics[0].mac
    lab.exec("K", "ip", "route", "replace", "10.1.0.0/24", "via", "10.4.0.1", check=True)
    with Capture(lab, "vr509", "eth1", "icmp") as through:
        assert lab.exec("K", "ping", "-c3", "-i0.2", "-W1", "10.1.0.13").returncode == 0
    assert len(through.fields("icmp.type == 8", "frame.number")) == 3
    vrs.destroy("vr509")
    assert "vr509" not in lab.exec("host3", "ip", "netns", "list").stdout  # (list is global)
    assert not any(vm.name == "vr509" for vm in lab.intent.vms)
    assert lab.exec("K", "ping", "-c2", "-i0.2", "-W1", "10.1.0.13").returncode != 0
    lab.exec("K", "ip", "route", "del", "10.1.0.0/24", check=True)


def test_create_is_validated_before_anything_is_built(lab):
    from tenet.model.errors import IntentError

    with pytest.raises(IntentError, match="N2 belongs to tenant acme, not globex"):
        lab.vrouters.create("vrx", "host2", "globex", [{"network": "N2"}])
    assert "tn-fig3-vrx" not in lab.exec("host2", "ip", "netns", "list").stdout
    with pytest.raises(IntentError, match="must form one connected graph"):  # N2 alone: apart from 508
        lab.vrouters.create("vrx", "host2", "acme", [{"network": "N2", "ip": "10.2.0.250/24"}])
    intent = lab.vrouters.create("vrx", "host2", "acme", [{"network": "N2", "ip": "10.2.0.250/24"},
                                                          {"network": "N1", "ip": "10.1.0.250/24"}])
    assert any(vr.name == "vrx" for vr in intent.vrouters)
    assert lab.exec("vrx", "ping", "-c2", "-i0.2", "-W1", "10.2.0.1").returncode == 0  # A, on its VN
    lab.vrouters.destroy("vrx")
