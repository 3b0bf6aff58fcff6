"""`tenet get` and `tenet apply --lab` on a running lab, as an operator uses them: get the
document, edit it, apply it. Each apply runs while a (h1 → h3, encapsulated) and s → a (h2 →
h1, translated) ping every 50 ms: neither may lose a packet."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from tenet.agent.rates import stage_names
from tenet.lab import netns
from tenet.lab.lab import Lab, down
from tenet.lab.record import Record
from tenet.model.tenancy import port_name
from tenet.store import keys, published
from tenet.store.apply import ApplyConflict, apply, plan_apply
from tenet.store.intent import edit_intent
from tenet.store.open import open_store

from waiting import wait

TOPOLOGY = Path(__file__).with_name("apply.yaml")
NAME = "tapply"
WIRE = 1514 / 1448  # a full TCP segment's frame over its payload: the token bucket counts frames


@pytest.fixture(scope="module")
def lab():
    lab = Lab.load(TOPOLOGY)
    lab.up()
    try:
        lab.wait_attached("t", timeout=15)
        yield lab
    finally:
        down(Record.load(NAME))  # as `tenet apply` left it: with what it created


def tenet(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tenet.cli.main", *argv], capture_output=True, text=True, timeout=120)


def get() -> dict:
    r = tenet("get", "--lab", NAME)
    assert r.returncode == 0, r.stderr
    return yaml.safe_load(r.stdout)


def apply_doc(tmp_path, doc: dict, *flags: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "tenancy.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return tenet("apply", "--lab", NAME, *flags, str(path))


def tenancy_revision(lab) -> int:
    store = open_store(lab.store_url)
    try:
        return store.get(keys.tenancy()).mod_revision
    finally:
        store.close()


def listed(lab, mac: str) -> list[str]:
    """The hosts whose published tables name `mac` in any VN."""
    store = open_store(lab.store_url)
    try:
        tables = [t for h in ("h1", "h2", "h3") if (t := published.read(store, h))]
    finally:
        store.close()
    return [t.host for t in tables if any(e.destination == mac for v in t.vns for e in v.entries)]


def pings(lab, node: str, dst: str, *extra: str) -> bool:
    return lab.exec(node, "ping", "-c2", "-i0.2", "-W1", *extra, dst).returncode == 0


@contextmanager
def undisturbed(lab):
    """a → b and s → a ping every 50 ms from half a second before the block to a second after
    it (the agents may still be applying what it changed): none may go unanswered."""
    flows = [lab.popen(src, "ping", "-i", "0.05", dst, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for src, dst in (("a", "10.81.1.2"), ("s", "10.81.1.1"))]
    try:
        time.sleep(0.5)
        yield
        time.sleep(1.0)
    finally:
        for f in flows:
            f.send_signal(signal.SIGINT)
    for f in flows:
        text = f.communicate(timeout=5)[0]
        sent, got = map(int, re.search(r"(\d+) packets transmitted, (\d+) received", text).groups())
        assert sent >= 20 and got == sent, text


def test_get_prints_the_document_and_a_dry_run_shows_the_diff_and_writes_nothing(lab, tmp_path):
    doc = get()
    assert doc["name"] == NAME and set(doc["vms"]) == {"a", "b", "s", "c", "m", "v", "t"}
    assert yaml.safe_load(tenet("get", "--lab", NAME, "--part", "tenancy").stdout).keys() <= {
        "tenants", "networks", "vms", "aaa", "servers", "vrouters", "vlinks"}
    assert json.loads(tenet("get", "--lab", NAME, "--format", "json").stdout) == doc
    assert apply_doc(tmp_path, doc).stdout.strip() == "no changes"
    rev = tenancy_revision(lab)
    doc["vms"]["a"]["nics"][0]["ip"] = "10.81.1.111/24"
    r = apply_doc(tmp_path, doc, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "~ vms.a\n    nics[0].ip: 10.81.1.1/24 → 10.81.1.111/24\n" in r.stdout
    assert "0 to add, 1 to change, 0 to remove" in r.stdout
    assert tenancy_revision(lab) == rev and lab.exec("a", "ip", "-br", "addr", "show", "eth0").stdout.split()[2] == "10.81.1.1/24"


def test_an_invalid_document_is_refused_with_every_path_and_nothing_changes(lab, tmp_path):
    rev = tenancy_revision(lab)
    doc = get()
    doc["vms"]["x"] = {"host": "h9", "nics": [{"network": "n1", "ip": "10.81.1.2/24"}]}
    doc["networks"]["n1"]["vnid"] = "many"
    r = apply_doc(tmp_path, doc)
    assert r.returncode == 1
    for problem in ("vms.x.host: no host named 'h9'", "networks.n1.vnid: VN-ID must be an integer"):
        assert problem in " ".join(r.stderr.split()), r.stderr
    doc = get()
    doc["hosts"]["h2"]["capability"] = 7  # a valid fabric, but not the one stored
    r = apply_doc(tmp_path, doc)
    assert r.returncode == 1 and "hosts.h2.capability: is 7 here but 100 in the stored fabric" in " ".join(r.stderr.split())
    assert tenancy_revision(lab) == rev


def test_a_new_vn_with_vms_on_two_hosts_reaches_itself_and_nothing_else(lab, tmp_path):
    doc = get()
    doc["networks"]["n3"] = {"vnid": 8103, "subnet": "10.81.3.0/24", "tenant": "blue"}
    doc["vms"]["p"] = {"host": "h1", "nics": [{"network": "n3", "ip": "10.81.3.1/24"}]}
    doc["vms"]["q"] = {"host": "h3", "nics": [{"network": "n3", "ip": "10.81.3.2/24"}]}
    with undisturbed(lab):
        r = apply_doc(tmp_path, doc)
    assert r.returncode == 0, r.stderr
    assert "+ networks.n3" in r.stdout and "+ vms.p" in r.stdout and "+ vms.q" in r.stdout
    now = Lab.running(NAME)
    assert pings(now, "p", "10.81.3.2") and pings(now, "q", "10.81.3.1")  # h1 ↔ h3: encapsulated
    now.exec("p", "ip", "route", "add", "10.81.1.0/24", "dev", "eth0", check=True)  # aimed at n1 anyway
    assert not pings(now, "p", "10.81.1.2") and not pings(now, "p", "10.81.1.1")


def test_a_removed_vm_loses_its_namespace_and_every_table_forgets_it(lab, tmp_path):
    mac = lab.mac("v")
    assert listed(lab, mac) == ["h1", "h2", "h3"]
    doc = get()
    del doc["vms"]["v"]
    with undisturbed(lab):
        r = apply_doc(tmp_path, doc)
    assert r.returncode == 0, r.stderr
    assert "- vms.v" in r.stdout
    assert not netns.exists("tn-tapply-v") and "tn-tapply-v" not in Record.load(NAME).namespaces
    assert listed(lab, mac) == []
    assert port_name("v", 0) not in lab.exec("h3", "ip", "-br", "link").stdout


def test_a_nic_moved_to_another_vn_reaches_its_new_members_only(lab, tmp_path):
    doc = get()
    doc["vms"]["m"]["nics"][0].update(network="n2", ip="10.81.2.4/24")
    with undisturbed(lab):
        r = apply_doc(tmp_path, doc)
    assert r.returncode == 0, r.stderr
    assert "~ vms.m\n    nics[0].network: n1 → n2\n    nics[0].ip: 10.81.1.4/24 → 10.81.2.4/24\n" in r.stdout
    now = Lab.running(NAME)
    link = now.exec("m", "ip", "-br", "addr", "show", "eth0").stdout.split()
    assert link[2] == "10.81.2.4/24"
    assert pings(now, "m", "10.81.2.3")  # c, on n2 (same host)
    assert pings(now, "c", "10.81.2.4")
    now.exec("m", "ip", "route", "add", "10.81.1.0/24", "dev", "eth0", check=True)
    assert not pings(now, "m", "10.81.1.1") and not pings(now, "m", "10.81.1.6")  # a and s, its old VN
    assert not pings(now, "s", "10.81.1.4")  # its old address answers no one


def test_a_virtual_router_applied_routes_between_vns_and_applied_away_is_gone(lab, tmp_path):
    """VR g on h3 joins n1 and n2: s (n1, h2) reaches c (n2, h2) through it, one routed hop."""
    doc = get()
    doc["vrouters"] = {"g": {"host": "h3", "tenant": "default", "nics": [{"network": "n1", "ip": "10.81.1.254/24"},
                                                                         {"network": "n2", "ip": "10.81.2.254/24"}]}}
    with undisturbed(lab):
        r = apply_doc(tmp_path, doc)
    assert r.returncode == 0, r.stderr
    assert "+ vrouters.g" in r.stdout
    now = Lab.running(NAME)
    now.exec("s", "ip", "route", "replace", "10.81.2.0/24", "via", "10.81.1.254", check=True)
    now.exec("c", "ip", "route", "replace", "10.81.1.0/24", "via", "10.81.2.254", check=True)
    ping = now.exec("s", "ping", "-c2", "-i0.2", "-W1", "10.81.2.3")
    assert ping.returncode == 0 and "ttl=63" in ping.stdout, ping.stdout
    del doc["vrouters"]
    with undisturbed(lab):
        r = apply_doc(tmp_path, doc)
    assert r.returncode == 0, r.stderr
    assert "- vrouters.g" in r.stdout and not netns.exists("tn-tapply-g")
    assert not pings(lab, "s", "10.81.2.3")
    lab.exec("s", "ip", "route", "del", "10.81.2.0/24", check=True)
    lab.exec("c", "ip", "route", "del", "10.81.1.0/24", check=True)


def test_a_users_new_rate_holds_on_its_live_session(lab, tmp_path):
    """alice's rate_up 50mbit → 20mbit: the lab (as RADIUS operator) sends t's NVE a CoA, the
    session goes on, and t's TCP stream to s is held to 20 Mbit/s on the wire."""
    shaper, _ = stage_names(port_name("t", 0))
    assert "rate 50Mbit" in lab.exec("h1", "tc", "qdisc", "show", "dev", shaper).stdout
    session = lab.endpoints()[lab.mac("t")]["session"]
    doc = get()
    doc["aaa"]["users"]["alice"]["rate_up"] = "20mbit"
    with undisturbed(lab):
        r = apply_doc(tmp_path, doc)
    assert r.returncode == 0, r.stderr
    assert "~ aaa.users.alice\n    rate_up: 50mbit → 20mbit\n" in r.stdout
    wait(lambda: "rate 20Mbit" in lab.exec("h1", "tc", "qdisc", "show", "dev", shaper).stdout, 10, "t's new rate")
    assert lab.endpoints()[lab.mac("t")]["session"] == session  # changed in place, not re-attached
    server = lab.popen("s", "iperf3", "-s", "-1", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: "LISTEN" in lab.exec("s", "ss", "-ltn", "sport = :5201").stdout, 5, "iperf3 server")
        out = lab.exec("t", "iperf3", "-c", "10.81.1.6", "-t", "3", "-O", "1", "-J", timeout=30)
        wire = json.loads(out.stdout)["end"]["sum_received"]["bits_per_second"] * WIRE
    finally:
        server.terminate()
        server.wait(5)
    assert abs(wire - 20e6) <= 0.1 * 20e6, f"{wire / 1e6:.1f} Mbit/s on the wire from t"


def test_a_change_between_plan_and_apply_fails_clearly_and_writes_nothing(lab):
    store = open_store(lab.store_url)
    try:
        doc = yaml.safe_load(tenet("get", "--lab", NAME).stdout)
        del doc["vms"]["c"]
        plan = plan_apply(store, doc)
        edit_intent(store, lambda d: d["tenants"].append("green"))  # someone else, meanwhile
        now = store.get(keys.tenancy())
        with pytest.raises(ApplyConflict, match=rf"the tenancy changed since it was read \(revision {plan.revision}, "
                                                rf"now {now.mod_revision}\): run tenet apply again to see the new diff"):
            apply(store, plan)
        assert store.get(keys.tenancy()) == now
    finally:
        store.close()
    assert netns.exists("tn-tapply-c") and pings(lab, "c", "10.81.2.4")
