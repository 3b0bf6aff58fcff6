"""Admission split over two processes on h1 (`admission_shards: 2`): the kernel hands each
TES's frames to the shard that owns its MAC; the per-NVE requests (an operator's revocation,
a RADIUS Disconnect) reach whichever shard holds the session; and when one shard dies, all are
restarted and take their sessions back from the store, so no TES notices."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenet.ethernet import shard_of
from tenet.lab.lab import Lab
from tenet.store import keys
from tenet.store.open import open_store
from tenet.store.records import AdmissionReady

from waiting import wait

TOPOLOGY = Path(__file__).with_name("shards.yaml")
TES = ("T0", "T1", "T2", "T3")
DISCONNECT = r"""
import sys
from pyrad import packet
from pyrad.client import Client
from pyrad.dictionary import Dictionary
from tenet.aaa.radius import DICTIONARY
nas, secret, mac = sys.argv[1:4]
c = Client(server=nas, secret=secret.encode(), dict=Dictionary(str(DICTIONARY)), coaport=3799, timeout=2, retries=1)
print(c.SendPacket(c.CreateCoAPacket(code=packet.DisconnectRequest, Calling_Station_Id=mac)).code)
"""


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        for v in TES:
            lab.wait_attached(v, timeout=20)
        yield lab


def shard_pids(lab) -> dict[int, int]:
    store = open_store(lab.store_url)
    try:
        ready = [AdmissionReady.from_json(kv.value) for kv in store.range(keys.admission_prefix("h1"))]
    finally:
        store.close()
    return {r.shard: r.pid for r in ready}


def attached_by(lab, mac: str) -> set[int]:
    """The PIDs that logged attaching this MAC (the agent's children share its log)."""
    log = Path(lab.process("agent", "h1").log).read_text()
    return {int(p) for p in re.findall(rf"tenet\.discovery\[(\d+)\] [^\n]*\battach {mac} ", log)}


def tes_log(lab, vm: str) -> str:
    return Path(lab.process("tes", f"{vm}.eth0").log).read_text()


def reaches_s(lab, vm: str) -> bool:
    return lab.exec(vm, "ping", "-c2", "-i0.2", "-W2", "10.65.0.1").returncode == 0


def test_each_shard_admits_exactly_the_macs_the_kernel_hands_it(lab):
    pids = shard_pids(lab)
    assert sorted(pids) == [0, 1] and pids[0] != pids[1]
    owners = {shard_of(lab.mac(v), 2) for v in TES}
    assert owners == {0, 1}  # the topology puts TESs in both shards
    for v in TES:
        assert attached_by(lab, lab.mac(v)) == {pids[shard_of(lab.mac(v), 2)]}, v
        assert reaches_s(lab, v), v


def test_operator_revocation_reaches_the_shard_holding_the_session(lab):
    """`tenet detach` is followed by shard 0; T3 is shard 1's: TERMINATE(admin) all the same."""
    t3 = lab.mac("T3")
    assert shard_of(t3, 2) == 1
    old = lab.endpoints()[t3]["session"]
    r = subprocess.run([sys.executable, "-m", "tenet.cli.main", "detach", t3, "--lab", lab.name, "--why", "audit"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    wait(lambda: lab.endpoints().get(t3, {}).get("session") not in (None, old), 10, "T3's new session")
    assert "session ended: terminated" in tes_log(lab, "T3")
    time.sleep(1)  # the new session holds: taking the port off the bridge is not the port gone
    assert "PORT_GONE" not in Path(lab.process("agent", "h1").log).read_text()
    assert lab.endpoints()[t3]["session"] not in (None, old)
    assert lab.endpoints()[lab.mac("T1")]["session"]  # its shard-mate is untouched


def test_radius_disconnect_is_answered_for_the_shard_holding_the_session(lab):
    """RFC 5176 arrives at shard 0's port 3799: ACK for T1 (shard 1's), NAK for a stranger."""
    t1 = lab.mac("T1")
    old = lab.endpoints()[t1]["session"]
    nas = str(lab.intent.fabric.host("h1").ip)
    secret = (lab.record.dir / "radius.secret").read_text().strip()

    def disconnect(mac: str) -> int:
        r = lab.exec("aaa", sys.executable, "-c", DISCONNECT, nas, secret, mac.upper().replace(":", "-"))
        assert r.returncode == 0, r.stderr
        return int(r.stdout)

    assert disconnect(t1) == 41  # Disconnect-ACK
    wait(lambda: lab.endpoints().get(t1, {}).get("session") not in (None, old), 10, "T1's new session")
    assert disconnect("02:65:00:00:99:99") == 42  # Disconnect-NAK: no shard has it


def test_a_dead_shard_takes_the_group_down_and_back_without_losing_a_session(lab):
    """SIGKILL shard 1: the agent restarts both shards; each adopts its TESs from the store, so
    every session survives (same ids after 3 hello intervals) and every TES still talks."""
    before = {v: lab.endpoints()[lab.mac(v)]["session"] for v in TES}
    ended = {v: tes_log(lab, v).count("session ended") for v in TES}
    old = shard_pids(lab)
    os.kill(old[1], signal.SIGKILL)
    wait(lambda: len(p := shard_pids(lab)) == 2 and not set(p.values()) & set(old.values()), 10, "new shards")
    time.sleep(4)  # past 3 hello intervals: a session a shard failed to adopt would have ended
    assert {v: lab.endpoints()[lab.mac(v)]["session"] for v in TES} == before
    assert {v: tes_log(lab, v).count("session ended") for v in TES} == ended
    for v in TES:
        assert reaches_s(lab, v), v
