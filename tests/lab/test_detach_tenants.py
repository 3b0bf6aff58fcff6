"""Tenants reuse MACs: detaching acme's TES ends its session in acme's VN only, and globex's
TES with the same MAC on the same host keeps its session and its traffic (the revocation
names its VN from `tenet detach --vn` through the store to the admission)."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tenet.lab.lab import Lab
from tenet.store.endpoints import attached
from tenet.store.open import open_store

from waiting import wait

TOPOLOGY = Path(__file__).with_name("detach_tenants.yaml")
MAC = "02:58:00:00:00:10"


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        wait(lambda: set(sessions(lab)) == {"a", "g"}, 30, "A and G attached")
        yield lab


def sessions(lab) -> dict[str, int]:
    """The session of MAC per VN, from the NVEs' endpoint reports."""
    store = open_store(lab.store_url)
    try:
        return {r.vn: r.session for r in attached(store) if r.mac == MAC}
    finally:
        store.close()


def answers(lab, vm: str) -> bool:
    return lab.exec(vm, "ping", "-c2", "-i0.2", "-W2", "10.58.1.1").returncode == 0


def test_detaching_one_tenants_tes_leaves_the_other_tenants_tes_of_the_same_mac(lab):
    before = sessions(lab)
    assert answers(lab, "A") and answers(lab, "G")
    r = subprocess.run([sys.executable, "-m", "tenet.cli.main", "detach", MAC, "--vn", "a", "--lab", lab.name,
                        "--why", "audit"], capture_output=True, text=True)
    assert r.returncode == 0 and "asked h1" in r.stdout, r.stderr
    wait(lambda: sessions(lab).get("a") not in (None, before["a"]), 10, "A's new session")
    assert "session ended: terminated" in Path(lab.process("tes", "A.eth0").log).read_text()
    time.sleep(1)  # had G been revoked too, its TERMINATE would be logged by now
    assert sessions(lab)["g"] == before["g"]
    assert "session ended" not in Path(lab.process("tes", "G.eth0").log).read_text()
    assert answers(lab, "G") and answers(lab, "A")
