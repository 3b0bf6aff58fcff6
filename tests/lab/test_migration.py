"""Live migration of an ordinary VM (hypervisor/migration.py), with real packets: m moves
h1 -> h3 (same physical network; h3 had no VM of blue, h1 loses its last), h3 -> h5 (behind
the router: its peers' addressing flips), h5 -> h2 under a TCP stream, while p2 (pn1) and
p4 (pn2) probe it every millisecond and another tenant's VM with m's MAC and IP sits on h3.
Then the other primitives on ordinary VMs. One lab for the module, in that order."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tenet.compute.tables import Function
from tenet.controller.hold import HOLD
from tenet.hypervisor.errors import HypervisorError
from tenet.lab.gap import Echo, Prober
from tenet.lab.lab import Lab
from tenet.model.tenancy import port_name
from tenet.store import keys, published
from tenet.store.records import EndpointReport
from tenet.store.open import open_store

from capture import Capture
from waiting import wait

TOPOLOGY = Path(__file__).parent / "migrate.yaml"
M, M_IP = "02:73:00:00:00:10", "10.73.0.10"


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        for peer in ("p2", "p4", "g5"):  # warm: ARP across the router's multicast tree takes a while first
            wait(lambda: lab.exec(peer, "ping", "-c1", "-W1", M_IP).returncode == 0, 20, f"{peer} reaches {M_IP}")
        yield lab


@pytest.fixture(scope="module")
def echo(lab):
    e = Echo(lab, "m")
    yield e
    e.stop()


def tables(lab, host: str):
    store = open_store(lab.store_url)
    try:
        return published.read(store, host)
    finally:
        store.close()


def functions(lab, host: str) -> set[Function]:
    """How `host` reaches m on blue."""
    t = tables(lab, host).vn("blue")
    return {e.function for e in t.entries if e.destination == M} if t else set()


def port_on(lab, host: str) -> bool:
    return lab.exec(host, "ip", "link", "show", port_name("m", 0)).returncode == 0


def migrate_probed(lab, to: str, seconds: float = 2.5):
    """Migrate m while p2 and p4 probe it; each prober's gaps."""
    probers = [Prober(lab, p, M_IP, seconds) for p in ("p2", "p4")]
    report = lab.hypervisor.migrate("m", to)
    return report, [p.gaps() for p in probers]


def assert_continued(gaps) -> None:
    """Every stream kept being answered and was answered again well before its end: the
    migration did not cut it. How long it paused is the bench's to measure (bench/migration.py;
    a first landing on a host sometimes adds a second pause of ~0.8 s: docs/hypervisor.md)."""
    for g in gaps:
        assert g.answered > 0.5 * g.sent, g
        end = g.sent * g.interval
        assert all(at + n < end - 0.5 for at, n in g.runs), g


def test_within_a_physical_network_into_a_host_without_the_vn_and_out_of_its_last(lab, echo):
    assert tables(lab, "h3").vn("blue") is None and functions(lab, "h2") == {Function.TRANSLATE_L2}
    neighbours = lab.exec("m", "ip", "neigh", "show", "dev", "eth0").stdout
    report, gaps = migrate_probed(lab, "h3")
    assert (report.source, report.destination) == ("h1", "h3") and report.live
    assert_continued(gaps)
    assert port_on(lab, "h3") and not port_on(lab, "h1")
    # the VM itself was untouched: the same echo process, addresses and neighbour entries
    assert echo.proc.poll() is None and str(echo.pid) in lab.exec("m", "ps", "-eo", "pid").stdout
    assert M_IP in lab.exec("m", "ip", "-4", "addr", "show", "eth0").stdout
    macs = lambda text: {line.split()[0] for line in text.splitlines() if "lladdr" in line}  # noqa: E731
    assert macs(neighbours) <= macs(lab.exec("m", "ip", "neigh", "show", "dev", "eth0").stdout)
    assert functions(lab, "h2") == {Function.TRANSLATE_L2} and functions(lab, "h3") == {Function.NO_MODIFICATION}
    # h1 held m, blue's last VM there: its instance goes after the controller's hold
    wait(lambda: tables(lab, "h1").vn("blue") is None, HOLD + 10, "h1's blue instance removed after the hold")
    wait(lambda: "tnb7301" not in lab.exec("h1", "ip", "-br", "link").stdout, 10, "h1's blue bridge gone")
    assert lab.exec("p2", "ping", "-c2", "-i0.2", "-W1", M_IP).returncode == 0


def test_across_the_router_the_peers_addressing_flips(lab, echo):
    assert functions(lab, "h4") == {Function.ENCAPSULATE}
    report, gaps = migrate_probed(lab, "h5")
    assert_continued(gaps)
    assert functions(lab, "h2") == {Function.ENCAPSULATE}  # it translated to h3
    assert functions(lab, "h4") == {Function.TRANSLATE_L2}  # it encapsulated to h3
    for peer in ("p2", "p4"):
        assert lab.exec(peer, "ping", "-c2", "-i0.2", "-W1", M_IP).returncode == 0


def test_a_tcp_stream_survives_the_migration(lab, echo):
    server = lab.popen("m", "iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: "LISTEN" in lab.exec("m", "ss", "-ltn", "sport = :5201").stdout, 5, "iperf3 server")
        client = lab.popen("p2", "iperf3", "-c", M_IP, "-t", "4", "-i", "0.5", "-J", "-b", "50M",
                           stdout=subprocess.PIPE, text=True)
        wait(lambda: "ESTAB" in lab.exec("m", "ss", "-tn", "sport = :5201").stdout, 5, "the stream established")
        lab.hypervisor.migrate("m", "h2")  # now local to p2
        out, _ = client.communicate(timeout=30)
    finally:
        server.kill()
        server.wait()
    assert client.returncode == 0, out[-2000:]
    result = json.loads(out)
    intervals = [i["sum"]["bytes"] for i in result["intervals"]]
    assert len(intervals) >= 7 and all(b > 0 for b in intervals[-3:]), intervals  # still flowing after the move
    assert result["end"]["sum_received"]["bytes"] > 0.9 * result["end"]["sum_sent"]["bytes"]


def test_another_tenants_vm_with_the_same_mac_and_ip_stays_isolated(lab, echo):
    """iso (green) has m's MAC and IP on h3; m arrives there: no frame of blue reaches iso,
    and green keeps working."""
    iso = Echo(lab, "iso")
    try:
        with Capture(lab, "iso", "eth0") as cap:
            green = Prober(lab, "g5", M_IP, 2.5)
            report, gaps = migrate_probed(lab, "h3")
            assert_continued(gaps)
            assert green.gaps().lost == 0  # green's own traffic to iso: never disturbed
            assert lab.exec("p2", "ping", "-c2", "-i0.2", "-W1", M_IP).returncode == 0
    finally:
        iso.stop()
    blue_sources = {"10.73.0.2", "10.73.0.4"}  # p2, p4: their probes are for m only
    seen = {row[0] for row in cap.fields("ip", "ip.src")}
    assert seen and not seen & blue_sources, seen
    assert port_on(lab, "h3") and functions(lab, "h3") == {Function.NO_MODIFICATION}


def test_a_migration_that_cannot_be_done_changes_nothing(lab):
    before = lab.hypervisor.intent()
    with pytest.raises(HypervisorError, match="already on h3"):
        lab.hypervisor.migrate("m", "h3")
    with pytest.raises(Exception, match="h9"):
        lab.hypervisor.migrate("m", "h9")
    assert lab.hypervisor.intent() == before and port_on(lab, "h3")


def rate_to(lab, vm_ip: str, seconds: int = 3) -> float:
    """Mbit/s p2 gets through to a VM (iperf3, the VM receiving)."""
    vm = next(v.name for v in lab.intent.vms for n in v.nics if n.ip and str(n.ip.ip) == vm_ip)
    server = lab.popen(vm, "iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: "LISTEN" in lab.exec(vm, "ss", "-ltn", "sport = :5201").stdout, 5, "iperf3 server")
        r = lab.exec("p2", "iperf3", "-c", vm_ip, "-t", str(seconds), "-J", timeout=30)
    finally:
        server.kill()
        server.wait()
    assert r.returncode == 0, r.stdout[-1000:]
    return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"] / 1e6


def test_an_8021x_vm_keeps_its_provisioning_behind_another_switch(lab):
    """v is authenticated by host6 toward tor1; migrated to host7 behind tor2 (the other
    physical network), host6 logs it off and host7 authenticates it toward tor2, whose
    RADIUS answer gives it the same VN, rate and class of service."""
    before = rate_to(lab, "10.73.0.20")
    assert 12 < before < 24, before  # 20 Mbit/s from RADIUS, enforced by tor1
    echo = Echo(lab, "v")
    try:
        probers = [Prober(lab, p, "10.73.0.20", 5.0) for p in ("p2", "p4")]
        report = lab.hypervisor.migrate("v", "host7")
        gaps = [p.gaps() for p in probers]
    finally:
        echo.stop()
    assert report.destination == "host7"
    wait(lambda: reporters(lab, lab.mac("v")) == {"tor2"}, 5, "tor2's report alone")  # tor1's ended with the logoff
    for g in gaps:  # through tor2 now (a first authorization there builds its rate stage: slower; see the bench)
        assert g.runs and g.runs[-1][0] + g.runs[-1][1] < 4.5 and g.answered > 0.2 * g.sent, g
    after = rate_to(lab, "10.73.0.20")
    assert 12 < after < 24, after  # the same limit, now enforced by tor2
    with Capture(lab, "p4", "eth0", "icmp") as cap:  # v's answers: marked CS5 by tor2 now
        assert lab.exec("p4", "ping", "-c3", "-i0.2", "-W1", "10.73.0.20").returncode == 0
    assert {row[0] for row in cap.fields("icmp.type == 0", "ip.dsfield.dscp")} == {"40"}


def reporters(lab, mac: str) -> set[str]:
    """The NVEs whose endpoint reports name `mac`."""
    store = open_store(lab.store_url)
    try:
        return {r.host for kv in store.range(keys.endpoints_prefix())
                for r in [EndpointReport.from_json(kv.value)] if r.mac == mac}
    finally:
        store.close()


def test_the_other_primitives_on_ordinary_vms(lab):
    hv = lab.hypervisor
    reach = lambda ip: lab.exec("p4", "ping", "-c2", "-i0.2", "-W1", ip).returncode == 0  # noqa: E731
    intent = hv.create("c", "h2", [{"network": "blue", "ip": "10.73.0.30/24"}])
    c = next(v for v in intent.vms if v.name == "c")
    assert reach("10.73.0.30")
    sleeper = lab.popen("c", "sleep", "120")
    try:
        hv.pause("c")
        assert hv.frozen("c") and not reach("10.73.0.30")  # frozen, and its NVE forwards nothing to it
        hv.resume("c")
        assert not hv.frozen("c") and reach("10.73.0.30") and sleeper.poll() is None
        hv.stop("c")
        assert "state DOWN" in lab.exec("c", "ip", "link", "show", "eth0").stdout and not reach("10.73.0.30")
        hv.start("c")
        assert reach("10.73.0.30") and sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()
    intent = hv.copy("c", "c2", "h4")
    c2 = next(v for v in intent.vms if v.name == "c2")
    assert c2.host == "h4" and c2.nics[0].mac != c.nics[0].mac
    assert str(c2.nics[0].ip) == "10.73.0.1/24"  # the lowest address no NIC of blue holds
    assert reach("10.73.0.1") and lab.exec("c2", "ping", "-c2", "-i0.2", "-W1", "10.73.0.30").returncode == 0
    namespaces = (lab.netns("c"), lab.netns("c2"))
    for name in ("c2", "c"):
        hv.destroy(name)
    assert not set(namespaces) & set(lab.exec("h1", "ip", "netns", "list").stdout.split())
    listed = {e.destination for h in ("h2", "h4") for t in [tables(lab, h).vn("blue")] if t for e in t.entries}
    assert not listed & {c.nics[0].mac, c2.nics[0].mac}


def test_a_tes_re_attaches_through_the_destinations_nve(lab):
    """t attached by NVO3 discovery through h2's NVE; migrated to h4 (behind the router), h2
    ends its session as the port leaves (not after three missed hellos) and the hypervisor
    nudges the TES, which discovers and attaches through h4's NVE."""
    mac = lab.mac("t")
    wait(lambda: reporters(lab, mac) == {"h2"}, 30, "t attached through h2")
    echo = Echo(lab, "t")
    try:
        probers = [Prober(lab, p, "10.73.0.40", 4.0) for p in ("p2", "p4")]
        lab.hypervisor.migrate("t", "h4")
        wait(lambda: reporters(lab, mac) == {"h4"}, 10, "t re-attached through h4 alone")
        gaps = [p.gaps() for p in probers]
    finally:
        echo.stop()
    for g in gaps:  # answered again well before the stream ended
        assert g.runs and g.runs[-1][0] + g.runs[-1][1] < 3.5 and g.answered > 0.4 * g.sent, g
    assert "moved" in Path(lab.process("tes", "t.eth0").log).read_text()
    assert f"detach {mac} from blue: PORT_GONE" in (lab.record.dir / "agent-h2.log").read_text()
