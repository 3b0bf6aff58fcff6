"""Virtual routers and links (seed 001, Berl et al. Figure 5): two tenants' parallel overlays
over one physical path shaped at 32 Mbit/s; links re-rated live."""
from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from tenet.model.errors import IntentError
from tenet.model.tenancy import port_name

from capture import Capture
from waiting import wait
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).parents[2] / "examples" / "berl.yaml"
WIRE = 1514 / 1448  # a full TCP segment's frame over its payload: HTB counts frames


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


def classes(lab):
    """minor -> (rate, ceil) of rm1's uplink HTB, as tc shows it."""
    text = lab.exec("rm1", "tc", "class", "show", "dev", "up0").stdout
    return {m[0]: (m[1], m[2]) for m in re.findall(r"class htb 7e03:(\w+) .*?rate (\S+) ceil (\S+)", text)}


def test_clients_reach_the_far_site_through_their_own_tenants_routers(lab):
    """Both tenants use 10.1.1.10 -> 10.1.2.10: each packet stays in its tenant's overlay."""
    with Capture(lab, "cb2", "eth0", "icmp") as on_b:
        r = lab.exec("ca1", "ping", "-c3", "-i0.2", "-W1", "-p", "aaaa", "10.1.2.10")
    assert r.returncode == 0 and "ttl=62" in r.stdout, r.stdout  # two virtual routers on the way
    assert not any("aaaaaaaa" in row[0] for row in on_b.fields("icmp", "data.data")), "tenant a's ping reached b"
    with Capture(lab, "cb2", "eth0", "icmp") as on_b:
        assert lab.exec("cb1", "ping", "-c3", "-i0.2", "-W1", "-p", "bbbb", "10.1.2.10").returncode == 0
    requests = on_b.fields("icmp.type == 8", "data.data")  # ping's pattern follows its timestamp
    assert len(requests) == 3 and all("bbbbbbbb" in row[0] for row in requests), requests


def test_a_link_is_re_rated_in_place_and_nothing_else_moves(lab):
    """Ten changes of vl1 while tenant b pings at 100/s: no loss in b, the uplink's root qdisc
    is the same one throughout (its counters only grow), and no VR's configuration changes."""
    vr_config = [lab.exec(vr, "ip", "-o", cmd).stdout for vr in ("a1", "a2") for cmd in ("addr", "route")]
    root_sent = lambda: int(re.search(r"qdisc htb 7e03: .*?Sent (\d+)", lab.exec(  # noqa: E731
        "rm1", "tc", "-s", "qdisc", "show", "dev", "up0").stdout, re.S).group(1))
    before = root_sent()
    pinger = lab.popen("cb1", "ping", "-i0.01", "-c400", "-W1", "10.1.2.10", stdout=subprocess.PIPE, text=True)
    for i in range(10):
        g = "20mbit" if i % 2 == 0 else "5mbit"
        lab.set_link("vl1", guarantee=g)
        # (a new rate re-creates the leaf class: a look in between finds it briefly absent)
        wait(lambda: classes(lab).get("10", ("", ""))[0] == g.replace("mbit", "Mbit"), 2, f"vl1 at {g}")
        time.sleep(0.2)
    out, _ = pinger.communicate(timeout=30)
    assert " 0% packet loss" in out, out
    assert root_sent() > before
    assert [lab.exec(vr, "ip", "-o", cmd).stdout for vr in ("a1", "a2") for cmd in ("addr", "route")] == vr_config
    with pytest.raises(IntentError, match="over its 32 Mbit/s"):
        lab.set_link("vl2", guarantee="30mbit")  # 5 + 30 > 32: refused, nothing applied
    assert classes(lab)["11"] == ("8Kbit", "32Mbit")


def iperf_pair(lab, seconds):
    """Bulk traffic on both links at once; each link's goodput, scaled to the wire."""
    servers = [lab.popen(c, "iperf3", "-s", "-1", stdout=subprocess.DEVNULL) for c in ("ca2", "cb2")]
    try:
        for c in ("ca2", "cb2"):
            wait(lambda: "LISTEN" in lab.exec(c, "ss", "-ltn", "sport = :5201").stdout, 5, "iperf3 server")
        clients = [lab.popen(c, "iperf3", "-c", "10.1.2.10", "-t", str(seconds), "-J", stdout=subprocess.PIPE, text=True)
                   for c in ("ca1", "cb1")]
        return [json.loads(p.communicate(timeout=seconds + 20)[0])["end"]["sum_received"]["bits_per_second"] * WIRE
                for p in clients]
    finally:
        for s in servers:
            s.kill()
            s.wait()


def test_a_guarantee_holds_under_contention_and_a_limit_caps(lab):
    lab.set_link("vl1", guarantee="30mbit", limit="0")
    wait(lambda: classes(lab).get("10", ("", ""))[0] == "30Mbit", 2, "vl1 guaranteed")
    a, b = iperf_pair(lab, 4)
    assert a >= 0.95 * 30e6 and b < 6e6, (a / 1e6, b / 1e6)  # b: the 2 Mbit/s left, plus iperf3 edge noise
    lab.set_link("vl1", guarantee="0", limit="2mbit")
    wait(lambda: classes(lab).get("10", ("", ""))[1] == "2Mbit", 2, "vl1 limited")
    a, b = iperf_pair(lab, 4)
    assert a <= 1.05 * 2e6 and b >= 0.9 * 30e6, (a / 1e6, b / 1e6)


def test_the_marks_sit_on_the_routers_link_ports(lab):
    rules = lab.exec("rm1", "nft", "list", "chain", "netdev", "tenet", "link_marks").stdout
    assert f'iifname "{port_name("a1", 1)}" meta priority set 7e03:10' in rules, rules
    assert f'iifname "{port_name("b1", 1)}" meta priority set 7e03:11' in rules, rules


def reaches(lab, client="ca1", ip="10.1.2.10"):
    return lab.exec(client, "ping", "-c2", "-i0.2", "-W1", ip).returncode == 0


def test_a_paused_router_stops_forwarding_and_resumes_where_it_was(lab):
    daemon = lab.popen("a1", "sleep", "300")  # stands in for a routing daemon inside the VR
    try:
        lab.vrouters.pause("a1")
        wait(lambda: lab.vrouters.frozen("a1"), 5, "a1's processes frozen")
        wait(lambda: not reaches(lab), 5, "a1 stopped forwarding")
        assert "10" not in classes(lab)  # vl1's guarantee released on the shared uplink
        assert reaches(lab, "cb1")  # tenant b's overlay never noticed
        lab.vrouters.resume("a1")
        wait(lambda: reaches(lab), 5, "a1 forwarding again")
        assert not lab.vrouters.frozen("a1") and "tenet-berl" not in Path(f"/proc/{daemon.pid}/cgroup").read_text()
        assert "10" in classes(lab)
    finally:
        daemon.kill()
        daemon.wait()


def test_a_stopped_router_is_down_and_starts_with_its_routes(lab):
    routes = lab.exec("a2", "ip", "-o", "route").stdout
    lab.vrouters.stop("a2")
    assert "state DOWN" in lab.exec("a2", "ip", "-o", "link", "show", "eth1").stdout
    assert not reaches(lab)
    lab.vrouters.start("a2")
    wait(lambda: reaches(lab), 10, "a2 forwarding again")
    assert lab.exec("a2", "ip", "-o", "route").stdout == routes


def vr_view(lab, vr):
    """What the router OS sees of itself: addresses, routes, neighbours (their MACs)."""
    neigh = {tuple(line.split()[:5:4]) for line in lab.exec(vr, "ip", "neigh").stdout.splitlines() if "lladdr" in line}
    return lab.exec(vr, "ip", "-o", "addr").stdout, lab.exec(vr, "ip", "-o", "route").stdout, neigh


def test_a_moved_router_keeps_its_links_and_notices_nothing(lab):
    """a1 goes from rm1 to rm2: its link to a2 no longer crosses the physical path (so needs
    no class on rm1's uplink) and its site-1 client is now reached across it; a1 itself keeps
    its interfaces, addresses, routes and neighbours."""
    before = vr_view(lab, "a1")
    pinger = lab.popen("ca1", "ping", "-i0.05", "-c100", "-W1", "10.1.2.10", stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    lab.vrouters.move("a1", "rm2")
    wait(lambda: port_name("a1", 1) in lab.exec("rm2", "ip", "-o", "link").stdout, 5, "a1's ports on rm2")
    out, _ = pinger.communicate(timeout=30)
    received = int(re.search(r"(\d+) received", out).group(1))
    assert received >= 90, out  # a migration's blip, not an outage
    assert reaches(lab) and "10" not in classes(lab)
    assert vr_view(lab, "a1") == before
    lab.vrouters.move("a1", "rm1")
    wait(lambda: reaches(lab) and "10" in classes(lab), 10, "a1 back on rm1")
