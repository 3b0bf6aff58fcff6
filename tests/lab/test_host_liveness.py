"""Every agent starts from its config file and registers its host; a host whose agent dies
is shown down when its lease lapses, leaves its peers' tables after the controller's grace,
and comes back whole when its agent returns — traffic between the others never notices."""
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tenet.controller.liveness import GRACE
from tenet.lab.lab import Lab
from tenet.store import keys, published
from tenet.store.inventory import HostState
from tenet.store.open import open_store
from tenet.store.records import Chassis, HostTables

from waiting import wait

TOPOLOGIES = {"sqlite": Path(__file__).parent / "register.yaml", "etcd": Path(__file__).parent / "register_etcd.yaml"}


@pytest.fixture(scope="module", params=sorted(TOPOLOGIES))
def lab(request):
    with Lab.load(TOPOLOGIES[request.param]) as lab:
        yield lab


def tables(lab, host) -> HostTables:
    store = open_store(lab.store_url)
    try:
        return published.read(store, host)
    finally:
        store.close()


def rows(t: HostTables) -> set[str]:
    return {e.destination for vn in t.vns for e in vn.entries}


def test_every_agent_registered_from_its_config_file(lab):
    wait(lambda: all(v.state is HostState.UP for v in lab.hosts().values()), 10, "every host up")
    store = open_store(lab.store_url)
    for h in lab.intent.fabric.hosts:
        c = Chassis.from_json(store.get(keys.chassis(h.name)).value)
        assert (c.network, c.address, c.uplink) == (h.network, str(h.address), "up0")  # read from its uplink
        argv = open(f"/proc/{lab.process('agent', h.name).pid}/cmdline").read().split("\0")
        assert argv[-3:-1] == ["--config", str(lab.record.dir / f"agent-{h.name}.toml")]
    store.close()


def test_a_dead_host_is_down_then_dropped_then_back_without_disturbing_the_others(lab):
    z_mac = lab.mac("z")
    assert z_mac in rows(tables(lab, "a"))
    c_before = tables(lab, "c")
    ping = subprocess.Popen(["ip", "netns", "exec", lab.netns("x"), "ping", "-i", "0.1", "-W", "1", "10.52.0.2"],
                            stdout=subprocess.PIPE, text=True)
    try:
        killed = time.monotonic()
        lab.stop_process("agent", "c", signal.SIGKILL)
        wait(lambda: lab.hosts()["c"].state is HostState.DOWN, 10, "c shown down when its lease lapsed")
        down_after = time.monotonic() - killed
        assert z_mac in rows(tables(lab, "a"))  # within the grace, peers keep it
        wait(lambda: z_mac not in rows(tables(lab, "a")), GRACE + 5, "z dropped from a's tables after the grace")
        assert time.monotonic() - killed >= GRACE
        assert tables(lab, "c") == c_before  # its own tables are kept as they were
        lab.restart_agent("c")
        wait(lambda: lab.hosts()["c"].state is HostState.UP, 10, "c registered again")
        wait(lambda: z_mac in rows(tables(lab, "a")), 10, "z back in a's tables")
        lab.wait_converged(20)
        assert tables(lab, "c").generation == c_before.generation  # nothing to reprogram on c
        assert lab.exec("y", "ping", "-c3", "-i0.2", "-W1", "10.52.0.3").returncode == 0
    finally:
        ping.send_signal(signal.SIGINT)
        summary = ping.communicate(timeout=5)[0]
    sent, received = (int(w.split()[0]) for w in summary.split("\n")[-3].split(",")[:2])
    assert sent > 100 and received == sent, summary  # x → y never lost a packet
    assert down_after < 10
