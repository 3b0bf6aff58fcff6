"""Virtual links across a router (seed 001; issue 13, part 6): each tenant's two virtual routers
sit on hosts on two physical networks joined by one router, so a link's frames leave the host
VXLAN-encapsulated. The HTB class on each uplink still takes them (the VR port's skb priority
survives encapsulation), so a limit and a guarantee hold, both ways, and re-rate live."""
from __future__ import annotations

import json
import re
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from capture import Capture
from waiting import wait
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).with_name("vlink_routed.yaml")
# HTB counts the frame on the uplink: a full TCP segment (1448 bytes of payload, 1514 as a frame
# inside the VN) plus VXLAN's 50 bytes of outer Ethernet, IP, UDP and VXLAN headers.
WIRE = (1514 + 50) / 1448
FAR = "10.255.0.2"  # the second end of both links (tenant b reuses tenant a's addresses)


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


def classes(lab, host):
    """minor -> (rate, ceil) of a host's uplink HTB, as tc shows it."""
    text = lab.exec(host, "tc", "class", "show", "dev", "up0").stdout
    return {m[0]: (m[1], m[2]) for m in re.findall(r"class htb 7e03:(\w+) .*?rate (\S+) ceil (\S+)", text)}


def rated(lab, minor, rate, ceil):
    """Both ends' uplinks carry the link's class at these rates (tc's spelling, e.g. 8Mbit)."""
    return all(classes(lab, h).get(minor) == (rate, ceil) for h in ("h1", "h2"))


def underlay_ip(lab, host):
    return re.search(r"inet (\S+)/", lab.exec(host, "ip", "-o", "-4", "addr", "show", "up0").stdout).group(1)


def router_port(lab, prefix):
    """The router's interface on the physical network whose addresses start with `prefix`."""
    return re.search(rf"^\d+: (\S+)\s+inet {re.escape(prefix)}", lab.exec("r", "ip", "-o", "-4", "addr").stdout, re.M).group(1)


def root_sent(lab, host):
    """The uplink root qdisc's byte counter: a re-created root would start again from zero."""
    text = lab.exec(host, "tc", "-s", "qdisc", "show", "dev", "up0").stdout
    return int(re.search(r"qdisc htb 7e03: .*?Sent (\d+)", text, re.S).group(1))


@contextmanager
def iperf(lab, pairs, seconds, reverse=False, interval=None):
    """Bulk TCP from each VR to the far end of its link, all at once (or, reverse, from the far
    end back); yields the clients, whose output is iperf3's JSON. Each VR is its link's
    endpoint: nothing but the link lies between them."""
    servers = [lab.popen(far, "iperf3", "-s", "-1", "-J", stdout=subprocess.DEVNULL) for _, far in pairs]
    try:
        for _, far in pairs:
            wait(lambda: "LISTEN" in lab.exec(far, "ss", "-ltn", "sport = :5201").stdout, 5, "iperf3 server")
        extra = (["-R"] if reverse else []) + (["-i", str(interval), "--get-server-output"] if interval else [])
        yield [lab.popen(near, "iperf3", "-c", FAR, "-t", str(seconds), "-J", *extra, stdout=subprocess.PIPE, text=True)
               for near, _ in pairs]
    finally:
        for s in servers:
            s.kill()
            s.wait()


def bulk(lab, pairs, seconds=4, reverse=False):
    """Each pair's goodput, scaled to what its frames cost on the uplink (bit/s)."""
    with iperf(lab, pairs, seconds, reverse) as clients:
        return [json.loads(p.communicate(timeout=seconds + 20)[0])["end"]["sum_received"]["bits_per_second"] * WIRE
                for p in clients]


def test_a_links_frames_cross_the_router_as_vxlan_with_its_vni(lab):
    """On the far physical network (the router's side toward h2): UDP 4789 from h1 to h2, VNI =
    the link's VN-ID, the VR's own packet inside; tenant b's link, same addresses, its own VNI."""
    h1, h2 = underlay_ip(lab, "h1"), underlay_ip(lab, "h2")
    assert h1.startswith("198.19.71.") and h2.startswith("198.19.72.")  # two networks, one router between
    with Capture(lab, "r", router_port(lab, "198.19.72."), "udp port 4789") as cap:
        assert lab.exec("a1", "ping", "-c3", "-i0.2", "-W1", FAR).returncode == 0
        assert lab.exec("b1", "ping", "-c3", "-i0.2", "-W1", FAR).returncode == 0
    seen = {tuple(r) for r in cap.fields("vxlan && icmp.type == 8", "vxlan.vni", "ip.src", "ip.dst")}
    assert seen == {("7301", f"{h1},10.255.0.1", f"{h2},{FAR}"), ("7302", f"{h1},10.255.0.1", f"{h2},{FAR}")}, seen


def test_a_limit_holds_both_ways_and_is_re_rated_live(lab):
    """8 Mbit/s each way (h1 shapes a1's direction, h2 a2's), then 16 Mbit/s set while traffic
    runs: the same root qdisc throughout, the class changed in place."""
    lab.set_link("vl1", guarantee="0", limit="8mbit")
    wait(lambda: rated(lab, "10", "8Kbit", "8Mbit"), 5, "vl1 limited on both uplinks")
    before = {h: root_sent(lab, h) for h in ("h1", "h2")}
    (up,) = bulk(lab, [("a1", "a2")])
    (down,) = bulk(lab, [("a1", "a2")], reverse=True)
    print(f"limit 8 Mbit/s: a1->a2 {up / 1e6:.2f}, a2->a1 {down / 1e6:.2f} Mbit/s on the wire")
    assert 0.9 * 8e6 <= up <= 1.1 * 8e6 and 0.9 * 8e6 <= down <= 1.1 * 8e6, (up / 1e6, down / 1e6)

    with iperf(lab, [("a1", "a2")], 14, interval=1) as (client,):
        time.sleep(6)  # six one-second intervals at the old limit
        lab.set_link("vl1", limit="16mbit")
        wait(lambda: rated(lab, "10", "8Kbit", "16Mbit"), 5, "vl1 re-rated on both uplinks")
        report = json.loads(client.communicate(timeout=40)[0])
    # what arrived each second (the sender's count is its socket writes, bursty at this scale)
    rates = [i["sum"]["bits_per_second"] * WIRE for i in report["server_output_json"]["intervals"]]
    old, new = sum(rates[1:5]) / 4, sum(rates[9:13]) / 4  # clear of TCP's start, the change and the end
    print(f"live re-rate 8 -> 16 Mbit/s: {old / 1e6:.2f} before, {new / 1e6:.2f} after")
    assert 0.9 * 8e6 <= old <= 1.1 * 8e6 and 0.9 * 16e6 <= new <= 1.1 * 16e6, [round(r / 1e6, 2) for r in rates]
    assert all(root_sent(lab, h) > before[h] for h in ("h1", "h2"))  # never a new root


def test_a_guarantee_holds_across_the_router_under_contention(lab):
    """Both tenants' links saturate the 32 Mbit/s uplinks at once: vl1 gets its 24 Mbit/s and
    vl2 what is left over, in each direction."""
    lab.set_link("vl1", guarantee="24mbit", limit="0")
    wait(lambda: rated(lab, "10", "24Mbit", "32Mbit"), 5, "vl1 guaranteed on both uplinks")
    for reverse in (False, True):
        a, b = bulk(lab, [("a1", "a2"), ("b1", "b2")], reverse=reverse)
        print(f"guarantee 24 of 32 Mbit/s{' (reverse)' if reverse else ''}: vl1 {a / 1e6:.2f}, vl2 {b / 1e6:.2f}")
        assert a >= 0.9 * 24e6 and b <= 1.1 * 8e6 and a + b <= 1.1 * 32e6, (reverse, a / 1e6, b / 1e6)


def test_re_rating_one_link_leaves_other_links_and_vns_alone(lab):
    """Ten changes of vl1 while tenant b's link and an ordinary VN each carry a ping across the
    router at 100/s: no loss, vl2's class and both uplinks' roots untouched, tenant a's routers'
    configuration unchanged."""
    lab.set_link("vl1", guarantee="0", limit="0")
    wait(lambda: rated(lab, "10", "8Kbit", "32Mbit"), 5, "vl1 back to defaults")
    vr_config = [lab.exec(vr, "ip", "-o", cmd).stdout for vr in ("a1", "a2") for cmd in ("addr", "route")]
    vl2 = {h: classes(lab, h)["11"] for h in ("h1", "h2")}
    before = {h: root_sent(lab, h) for h in ("h1", "h2")}
    pingers = [lab.popen("b1", "ping", "-i0.01", "-c400", "-W1", FAR, stdout=subprocess.PIPE, text=True),
               lab.popen("v1", "ping", "-i0.01", "-c400", "-W1", "10.73.0.2", stdout=subprocess.PIPE, text=True)]
    for i in range(10):
        g, lim = ("20mbit", "30mbit") if i % 2 == 0 else ("5mbit", "10mbit")
        lab.set_link("vl1", guarantee=g, limit=lim)
        tc = lambda s: s.replace("mbit", "Mbit")  # noqa: E731
        wait(lambda: rated(lab, "10", tc(g), tc(lim)), 5, f"vl1 at {g}/{lim}")
        time.sleep(0.2)
    for pinger in pingers:
        out, _ = pinger.communicate(timeout=30)
        assert " 0% packet loss" in out, out
    assert {h: classes(lab, h)["11"] for h in ("h1", "h2")} == vl2
    assert all(root_sent(lab, h) > before[h] for h in ("h1", "h2"))
    assert [lab.exec(vr, "ip", "-o", cmd).stdout for vr in ("a1", "a2") for cmd in ("addr", "route")] == vr_config
