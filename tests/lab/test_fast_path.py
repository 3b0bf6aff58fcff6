"""The NVE's fast path with real admission, RADIUS, controllers and packets: what an NVE
admitted forwards before the controller answers, only for a bounded time without it, and
what the controller refuses is taken back (agent/provisional.py, agent/fast_lane.py)."""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tenet.agent.provisional import HINT_TTL, PROVISIONAL_TTL
from tenet.model.tenancy import port_name
from tenet.store import published
from tenet.store.open import open_store
from tenet.wire.discovery import HINT_PORT

from capture import Capture
from waiting import wait
from tenet.lab.lab import Lab

TOPOLOGY = Path(__file__).with_name("fastpath.yaml")


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        lab.wait_attached("T", timeout=15)
        yield lab


def pings(lab, node: str, ip: str, count: int = 3) -> bool:
    return lab.exec(node, "ping", "-c", str(count), "-i", "0.2", "-W", "1", ip).returncode == 0


def published_macs(lab, host: str) -> set[str]:
    store = open_store(lab.store_url)
    try:
        tables = published.read(store, host)
    finally:
        store.close()
    return {e.destination for t in (tables.vns if tables else ()) for e in t.entries}


def agent_log(lab, host: str) -> str:
    return Path(lab.process("agent", host).log).read_text()


def test_a_row_the_controller_refuses_is_taken_back_at_once(lab):
    """RADIUS accepts eve into K2's address; h1 admits Y and forwards for it at once, but the
    controller drops the report (a TES never takes a declared VM's address). As soon as the
    controller has published past the report, h1 withdraws its row and gates Y's port again:
    long before the provisional time limit."""
    y = lab.mac("Y")
    wait(lambda: y in lab.endpoints(), 15, "Y's endpoint report")  # admitted and reported
    wait(lambda: f"{y} in n2: provisional row withdrawn: the controller published without it" in agent_log(lab, "h1"),
         PROVISIONAL_TTL - 1, "h1 taking Y's provisional row back")
    assert y not in published_macs(lab, "h1")
    table = lab.exec("h1", "nft", "list", "table", "netdev", "tenet", check=True).stdout
    gate = table[table.index("chain gate"):]
    assert f'"{port_name("Y", 0)}"' in gate[:gate.index("}")]
    with Capture(lab, "K2", "eth0", f"ether src {y}") as at_k2:  # Y's ARP would flood its VN's bridge
        lab.exec("Y", "ping", "-c", "2", "-i", "0.2", "-W", "1", "10.63.0.9")
    assert at_k2.fields("eth", "eth.src") == []


def test_an_admitted_tes_reaches_another_host_before_the_controller_answers(lab):
    """T leaves, then comes back while no controller runs: h1 admits it and forwards at once,
    and h2 accepts T's external MAC from h1's hint (seen on the wire); after the provisional
    time the rows go, and once a controller runs again the published tables carry T."""
    t = lab.mac("T")
    assert pings(lab, "T", "10.61.0.1")
    lab.stop_process("tes", "T.eth0")  # TERMINATE: h1 detaches T, the controller unpublishes it
    wait(lambda: t not in published_macs(lab, "h1") and t not in published_macs(lab, "h2"), 10, "T unpublished")
    for c in lab.controllers:
        lab.stop_process("controller", c)
    with Capture(lab, "h2", "up0", f"udp port {HINT_PORT}") as hints:
        lab.start_tes(only="T")
        wait(lambda: t in lab.endpoints(), 10, "T admitted by h1")
        assert pings(lab, "T", "10.61.0.1")  # S on h2: translated both ways
    assert t not in published_macs(lab, "h1") | published_macs(lab, "h2")  # nobody published it
    assert hints.fields("udp.dstport == %d" % HINT_PORT, "ip.src") != []
    time.sleep(PROVISIONAL_TTL + 0.5)
    assert not pings(lab, "T", "10.61.0.1", count=2)  # unconfirmed: withdrawn, never left standing
    assert "unconfirmed by the controller" in agent_log(lab, "h1")
    for c in lab.controllers:
        lab.restart_controller(c)
    lab.wait_attached("T", timeout=20)
    wait(lambda: pings(lab, "T", "10.61.0.1", count=1), 10, "T through the published tables")


SEND_HINT = r"""
import socket, sys
from tenet.wire import hint
to, vnid, internal, external = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
h = hint.Hint(7, (hint.HintEntry(hint.HintKind.ANNOUNCE, vnid, internal, external),))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.sendto(hint.encode(h), (to, hint.HINT_PORT))
"""


def test_a_hint_counts_only_from_the_underlay_and_only_for_a_while(lab):
    """A peer on the physical network (h2) may tell h1 an external MAC: h1 accepts frames from
    it at once, and no longer after the hint's time. A tenant VM (K, on h1 itself) sending the
    same datagram through its VN is never heard: the NVE takes nothing from a VN's bridge."""
    h1_ip = str(lab.intent.fabric.host("h1").ip)

    def h1_table() -> str:
        return lab.exec("h1", "nft", "list", "table", "netdev", "tenet", check=True).stdout

    lab.exec("K", "ip", "route", "replace", f"{h1_ip}/32", "dev", "eth0", check=True)
    lab.exec("K", "ip", "neigh", "replace", h1_ip, "lladdr", "ff:ff:ff:ff:ff:ff", "dev", "eth0", "nud", "permanent",
             check=True)  # flooded on n1's bridge in h1, the NVE's own namespace
    with Capture(lab, "h1", "tnb6101", f"udp port {HINT_PORT}") as on_bridge:
        lab.exec("K", sys.executable, "-c", SEND_HINT, h1_ip, "6101", "02:66:00:00:00:01", "06:74:6e:66:00:01", check=True)
    assert on_bridge.fields("udp", "ip.src") != []  # it did reach the NVE's host, through the VN
    lab.exec("h2", sys.executable, "-c", SEND_HINT, h1_ip, "6101", "02:66:00:00:00:02", "06:74:6e:66:00:02", check=True)
    wait(lambda: "06:74:6e:66:00:02" in h1_table(), 3, "h1 taking h2's hint")
    assert "06:74:6e:66:00:01" not in h1_table()
    wait(lambda: "06:74:6e:66:00:02" not in h1_table(), HINT_TTL + 3, "the hint's time running out")
