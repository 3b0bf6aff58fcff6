"""Destroying a virtual router with links: its links go, its peers keep their other links."""
from __future__ import annotations

from pathlib import Path

from tenet.lab.lab import Lab
from waiting import wait

TOPOLOGY = Path(__file__).with_name("triangle.yaml")


def ping(lab, vr: str, ip: str) -> bool:
    return lab.exec(vr, "ping", "-c2", "-i0.2", "-W1", ip).returncode == 0


def test_destroy_takes_the_links_and_renumbers_the_peers_in_place():
    with Lab.load(TOPOLOGY) as lab:
        assert ping(lab, "x", "10.255.2.1")  # y's end of yz, routed via xy
        assert lab.exec("x", "ip", "-br", "addr", "show", "eth1").stdout.split()[2] == "10.255.3.1/30"
        intent = lab.vrouters.destroy("y")
        assert [vl.name for vl in intent.vlinks] == ["xz"]
        assert "tn-tri-y" not in lab.exec("x", "ip", "netns", "list").stdout
        # x and z lost their NIC on xy / yz; their xz NIC moved from eth1 to eth0, address kept
        for vr, address in (("x", "10.255.3.1/30"), ("z", "10.255.3.2/30")):
            links = lab.exec(vr, "ip", "-br", "addr").stdout
            assert "eth0" in links and "eth1" not in links and address in links, links
        wait(lambda: ping(lab, "x", "10.255.3.2"), 10, "x to reach z over xz after the renumbering")
        assert not ping(lab, "x", "10.255.2.1")  # yz is gone
