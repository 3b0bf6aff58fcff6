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
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).parents[2] / "examples" / "berl.yaml"
WIRE = 1514 / 1448  # a full TCP segment's frame over its payload: HTB counts frames


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab
        lab.set_link("vl1", guarantee="0", limit="0")


def classes(lab):
    """minor -> (rate, ceil) of rm1's uplink HTB, as tc shows it."""
    text = lab.exec("rm1", "tc", "class", "show", "dev", "up0").stdout
    return {m[0]: (m[1], m[2]) for m in re.findall(r"class htb 7e03:(\w+) .*?rate (\S+) ceil (\S+)", text)}


def wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


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
        wait(lambda: classes(lab)["10"][0] == g.replace("mbit", "Mbit"), 2, f"vl1 at {g}")
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
    wait(lambda: classes(lab)["10"][0] == "30Mbit", 2, "vl1 guaranteed")
    a, b = iperf_pair(lab, 4)
    assert a >= 0.95 * 30e6 and b < 3e6, (a / 1e6, b / 1e6)
    lab.set_link("vl1", guarantee="0", limit="2mbit")
    wait(lambda: classes(lab)["10"][1] == "2Mbit", 2, "vl1 limited")
    a, b = iperf_pair(lab, 4)
    assert a <= 1.05 * 2e6 and b >= 0.9 * 30e6, (a / 1e6, b / 1e6)


def test_the_marks_sit_on_the_routers_link_ports(lab):
    rules = lab.exec("rm1", "nft", "list", "chain", "netdev", "tenet", "link_marks").stdout
    assert f'iifname "{port_name("a1", 1)}" meta priority set 7e03:10' in rules, rules
    assert f'iifname "{port_name("b1", 1)}" meta priority set 7e03:11' in rules, rules
