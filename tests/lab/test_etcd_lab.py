"""A lab whose control plane runs on a 3-member etcd cluster, as it would on real hosts: a
management network, TLS, one etcd user per process with RBAC; tenants' traffic flows, an
agent's credentials reach its own keys only, and losing a member loses nothing."""
from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tenet.lab import etcd
from tenet.lab.lab import Lab
from tenet.agent.config import load_config
from tenet.store import keys, published, rbac
from tenet.store.etcd import PermissionDenied
from tenet.store.open import open_store
from waiting import wait

TOPOLOGY = Path(__file__).with_name("etcd.yaml")


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


def ping(lab, node: str, ip: str, count: int = 3) -> subprocess.CompletedProcess:
    return lab.exec(node, "ping", "-c", str(count), "-i", "0.2", "-W", "2", "-n", ip)


def as_agent(lab, host: str):
    """A store opened with host's agent credentials, from the root namespace."""
    m = lab.plan.management
    return open_store(etcd.client_url(m.etcd, lab.pki, rbac.agent_user(host), netns=m.netns))


def test_three_members_follow_one_leader(lab):
    status = lab.etcd_status()
    assert etcd.healthy(status) and len({s.id for s in status}) == 3
    assert lab.exec("etcd1", "ss", "-Htln", "sport = :2379").stdout.split()[3] == f"{lab.plan.etcd_nodes()[0].ip.ip}:2379"


def test_the_root_namespace_is_not_wired_to_the_lab(lab):
    subnet = str(lab.plan.management.subnet.network_address).rsplit(".", 1)[0] + "."
    assert subnet not in subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert " mg0" not in links and "tn-tetcd" not in links


def test_every_process_has_its_own_user_and_no_lab_wiring(lab):
    for p in lab.record.processes:
        argv = Path(f"/proc/{p.pid}/cmdline").read_bytes().split(b"\0")
        url = next((a.decode() for a in argv if a.startswith(b"etcd://")), "")
        if p.role == "agent":  # from its config file, as on a real host
            url = load_config(argv[argv.index(b"--config") + 1].decode()).store
            assert f"user={rbac.agent_user(p.node)}&" in url and "netns=" not in url, url
        elif p.role == "controller":
            assert "user=controller&" in url and "netns=" not in url, url


def test_vms_on_different_hosts_reach_each_other(lab):
    for ip in ("10.68.0.2", "10.68.0.3"):
        r = ping(lab, "x", ip)
        assert r.returncode == 0, r.stdout + r.stderr


def test_an_agent_reads_its_own_tables_and_nothing_else(lab):
    store = as_agent(lab, "a")
    try:
        tables = published.read(store, "a")
        assert [t.vn for t in tables.vns] == ["v1"]
        for refused in (lambda: store.get(keys.tables("b")), lambda: store.get(keys.tenancy()),
                        lambda: store.range(keys.host_prefix("c")), lambda: store.range(keys.endpoints_prefix()),
                        lambda: store.put(keys.status("b"), b"{}"), lambda: store.put(keys.tables("a"), b"{}")):
            with pytest.raises(PermissionDenied):
                refused()
    finally:
        store.close()


def test_losing_the_leader_keeps_traffic_and_publishing(lab):
    """SIGKILL the leader (by its recorded PID) while x pings y: no echo is lost; the other two
    elect a leader, and a new virtual router is still published and reachable."""
    leader = etcd.leader(lab.etcd_status())
    pinger = lab.popen("x", "ping", "-c", "40", "-i", "0.1", "-W", "1", "-n", "10.68.0.2",
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)
    lab.stop_process("etcd", leader, signal.SIGKILL)
    out = pinger.communicate(timeout=30)[0]
    assert " 40 received" in out, out

    def new_leader() -> bool:
        s = lab.etcd_status()
        return etcd.leader(s) not in (None, leader) and sum(x.id is not None for x in s) == 2
    wait(new_leader, 15, "a new leader among the two left")
    lab.vrouters.create("r9", "c", "red", [{"network": "v1", "ip": "10.68.0.9/24"}])
    lab.wait_converged(30)
    wait(lambda: ping(lab, "x", "10.68.0.9", 1).returncode == 0, 15, "x to reach the new VR on c")
