"""etcd RBAC: the roles derived from the key layout, and a real etcd enforcing them — an agent
reads and writes its own keys and is refused everything else, through our own client."""
from __future__ import annotations

import json
import shutil
import time

import pytest

from tenet.agent.proxy_records import ProxyRecords
from tenet.lab.pki import Pki, issue, passwords
from tenet.model.load import load_intent
from tenet.store import keys, rbac
from tenet.store.base import Delete, Put, StoreError, follow
from tenet.store.etcd import EtcdStore, Login, PermissionDenied, Tls
from tenet.store.rbac import Access
from tenet.store.records import ProxyPort, ProxyPorts

from etcd_cluster import ETCD, EtcdCluster

DOC = {
    "name": "r",
    "underlay": {"networks": {"pn": {"subnet": "198.18.90.0/24"}}},
    "switches": {"sw": {"network": "pn"}},
    "hosts": {"a": {"network": "pn"}, "b": {"network": "pn"}, "ab": {"network": "pn"}, "p": {"switch": "sw"}},
    "networks": {"v": {"vnid": 100, "subnet": "10.0.0.0/24"}},
    "vms": {"x": {"host": "a", "network": "v", "ip": "10.0.0.1/24"}},
}


def test_an_agent_role_covers_its_own_keys_only():
    roles = {r.name: r for r in rbac.roles(load_intent(DOC).fabric)}
    assert set(roles) == {"controller", "agent-a", "agent-b", "agent-ab", "agent-sw", "agent-p"}
    a = roles["agent-a"]
    for key in (keys.tables("a"), keys.status("a"), keys.admission("a", 1), keys.revoke("a", "02:00:00:00:00:01"),
                keys.endpoint("a", "v", "02:00:00:00:00:01"), keys.chassis("a"), keys.alive("a")):
        assert a.allows(key, Access.READ), key
    for key in (keys.status("a"), keys.admission("a", 0), keys.revoke("a", "m"), keys.endpoint("a", "v", "m"),
                keys.chassis("a"), keys.alive("a")):
        assert a.allows(key, Access.WRITE), key
    for key in (keys.tenancy(), keys.tables("b"), keys.tables("ab"), keys.status("b"), keys.endpoint("b", "v", "m"),
                keys.endpoint("ab", "v", "m"), keys.chassis("ab"), keys.alive("b"), keys.extmac("v", "x", 0), "/tenet/fabric"):
        assert not a.allows(key, Access.READ) and not a.allows(key, Access.WRITE), key
    assert not a.allows(keys.tables("a"), Access.WRITE)  # the controller's
    assert roles["controller"].allows(keys.tenancy(), Access.READ) and roles["controller"].allows(keys.tables("b"), Access.WRITE)


needs_etcd = pytest.mark.skipif(ETCD is None or shutil.which("openssl") is None,
                                reason="needs the etcd binary and openssl (scripts/setup.sh)")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """One member requiring client certificates (the lab's PKI), with the roles applied."""
    d = tmp_path_factory.mktemp("pki")
    pki = Pki(d)
    roles = rbac.roles(load_intent(DOC).fabric)
    users = rbac.users(roles)
    issue(pki, {"server": "127.0.0.1"}, ["client", *users])
    pw = passwords(pki, users)
    c = EtcdCluster(1, tls=d)
    root = login(c, pki, "root")
    try:
        rbac.apply(root, roles, pw)
        rbac.apply(root, roles, pw)  # again, as root now: completes nothing, breaks nothing
        root.put(keys.tenancy(), b"{}")
        for h in ("a", "b"):
            root.put(keys.tables(h), h.encode())
        yield c, pki
    finally:
        root.close()
        c.stop()


def login(c: EtcdCluster, pki: Pki, user: str, password: str | None = None) -> EtcdStore:
    """`password`: a wrong one, written to a file of its own."""
    pw_file = pki.password(user)
    if password is not None:
        pw_file = pki.dir / f"wrong-{user}"
        pw_file.write_text(password)
    tls = Tls(str(pki.ca), str(pki.cert(user)), str(pki.key(user)))
    return EtcdStore([("127.0.0.1", c.client_ports[0])], tls, login=Login(user, str(pw_file)))


@needs_etcd
def test_an_agent_reads_and_writes_its_own_keys(cluster):
    c, pki = cluster
    a = login(c, pki, "agent-a")
    try:
        assert a.get(keys.tables("a")).value == b"a"
        assert [kv.key for kv in a.range(keys.host_prefix("a"))] == [keys.tables("a")]
        rev = a.revision()  # it may not read key NUL: the member's own revision
        a.put(keys.status("a"), b"ok")
        assert rev + 1 == a.revision()
        a.txn([], [Put(keys.endpoint("a", "v", "m1"), b"e"), Put(keys.admission("a"), b"s")])
        assert [kv.key for kv in a.range(keys.host_endpoints_prefix("a"))] == [keys.endpoint("a", "v", "m1")]
        a.txn([], [Delete(keys.revoke("a", "m1"))])  # clearing an operator's request it handled
        lease = a.grant(5)  # a registration under a lease: no permission needed for the lease itself
        a.txn([], [Put(keys.chassis("a"), b"c"), Put(keys.alive("a"), b"1", lease)])
        assert a.keepalive(lease) == 5 and a.get(keys.alive("a")).value == b"1"
        a.revoke(lease)
        assert a.get(keys.alive("a")) is None and a.get(keys.chassis("a")).value == b"c"
        assert a.watch(keys.host_prefix("a"), rev, timeout=1)[0].key == keys.status("a")
        assert follow(a, keys.servable(), rev, timeout=0)[1] == []  # admission follows it (agent/admit.py)
    finally:
        a.close()


@needs_etcd
@pytest.mark.parametrize("what, act", [
    ("another host's tables", lambda s: s.get(keys.tables("b"))),
    ("a host whose name it prefixes", lambda s: s.range(keys.host_prefix("ab"))),
    ("the tenancy", lambda s: s.get(keys.tenancy())),
    ("the fabric", lambda s: s.get(keys.fabric())),
    ("every endpoint", lambda s: s.range(keys.endpoints_prefix())),
    ("another host's status (write)", lambda s: s.put(keys.status("b"), b"forged")),
    ("its own tables (write)", lambda s: s.put(keys.tables("a"), b"forged")),
    ("another host's endpoints (write)", lambda s: s.txn([], [Put(keys.endpoint("b", "v", "m"), b"forged")])),
    ("another host's tables (watch)", lambda s: s.watch(keys.tables("b"), 1, timeout=1)),
    ("every key (watch)", lambda s: s.watch("/tenet/", 1, timeout=1)),
])
def test_an_agent_is_refused_everything_else(cluster, what, act):
    c, pki = cluster
    a = login(c, pki, "agent-a")
    try:
        with pytest.raises(PermissionDenied, match="permission denied.*agent-a"):
            act(a)
    finally:
        a.close()


@needs_etcd
def test_a_proxy_host_reads_only_its_ports_and_the_controller_everything(cluster):
    c, pki = cluster
    ctl = login(c, pki, "controller")
    try:
        assert ctl.get(keys.tenancy()).value == b"{}"
        ctl.put(keys.proxy("p"), b"ports")
        assert ctl.revision() > 0
    finally:
        ctl.close()
    p = login(c, pki, "agent-p")
    try:
        assert p.get(keys.proxy("p")).value == b"ports"
        with pytest.raises(PermissionDenied):
            p.get(keys.tables("p"))
    finally:
        p.close()


@needs_etcd
def test_a_proxy_host_may_watch_its_ports_and_nothing_more(cluster):
    """The proxy follows its key (agent/proxy_records.py): etcd checks the watched range."""
    c, pki = cluster
    p, ctl = login(c, pki, "agent-p"), login(c, pki, "controller")
    try:
        rev = p.revision() + 1
        ctl.put(keys.proxy("p"), b"ports 2")
        _, events = follow(p, keys.proxy("p"), rev, timeout=5)
        assert [(e.key, e.value) for e in events] == [(keys.proxy("p"), b"ports 2")]
        with pytest.raises(PermissionDenied):
            p.watch(keys.host_prefix("p"), rev, timeout=1)  # its host's other keys: no
        with pytest.raises(PermissionDenied):
            p.watch(keys.proxy("a"), rev, timeout=1)
    finally:
        p.close()
        ctl.close()


@needs_etcd
def test_an_invalidated_token_logs_in_again(cluster):
    """A password change ends the user's tokens (as does a simple token idle for
    --auth-token-ttl on the member asked, e.g. after a failover): the client logs in again."""
    c, pki = cluster
    a, root = login(c, pki, "agent-a"), login(c, pki, "root")
    try:
        assert a.get(keys.tables("a")).value == b"a"
        token = a.token
        root.request("/v3/auth/user/changepw", {"name": "agent-a", "password": pki.password("agent-a").read_text().strip()})
        assert a.get(keys.tables("a")).value == b"a" and a.token != token
    finally:
        a.close()
        root.close()


@needs_etcd
def test_wrong_or_missing_credentials_are_clear_errors(cluster):
    c, pki = cluster
    with pytest.raises(StoreError, match="login as 'agent-a' failed: .*invalid user ID or password"):
        login(c, pki, "agent-a", password="guess").get(keys.tables("a"))
    anonymous = EtcdStore([("127.0.0.1", c.client_ports[0])], Tls(str(pki.ca), str(pki.cert("agent-a")), str(pki.key("agent-a"))))
    with pytest.raises(PermissionDenied, match="no user"):
        anonymous.get(keys.tables("a"))


@needs_etcd
def test_tenet_store_rbac_applies_what_the_lab_applies(tmp_path):
    """docs/deploy.md step 5: the command, on a fresh cluster as root, gives a host that is
    not in the fabric (--host) its role; missing passwords are named and nothing is applied."""
    import yaml
    from typer.testing import CliRunner

    from tenet.cli.main import app
    from tenet.lab.etcd import client_url
    from tenet.lab.management import Station
    from ipaddress import IPv4Interface

    pki = Pki(tmp_path)
    fabric = tmp_path / "fabric.yaml"
    fabric.write_text(yaml.safe_dump({"name": "r", "underlay": {"networks": {"pn": {"subnet": "10.9.0.0/24"}}}}))
    roles = rbac.roles(load_intent(yaml.safe_load(fabric.read_text())).fabric, ["h7"])
    assert [r.name for r in roles] == ["controller", "agent-h7"]
    issue(pki, {"server": "127.0.0.1"}, ["client", *rbac.users(roles)])
    c = EtcdCluster(1, tls=tmp_path)
    try:
        url = client_url([Station("m", "etcd", "", IPv4Interface("127.0.0.1/8"))], pki, "root").replace(
            "127.0.0.1:2379", f"127.0.0.1:{c.client_ports[0]}")
        argv = ["store", "rbac", "--fabric", str(fabric), "--host", "h7", "--passwords", str(tmp_path), "--store", url]
        r = CliRunner().invoke(app, argv)
        assert r.exit_code == 1 and "root.password" in r.output and "agent-h7.password" in r.output
        assert "roles" not in json.loads(c.post(0, "/v3/auth/role/list"))  # nothing applied, auth still off
        passwords(pki, rbac.users(roles))
        r = CliRunner().invoke(app, argv)
        assert r.exit_code == 0, r.output
        h7 = login(c, pki, "agent-h7")
        try:
            h7.put(keys.chassis("h7"), b"c")
            with pytest.raises(PermissionDenied):
                h7.get(keys.fabric())
        finally:
            h7.close()
        r = CliRunner().invoke(app, ["store", "rbac", "--fabric", str(fabric), "--passwords", str(tmp_path), "--store",
                                     "sqlite:///" + str(tmp_path / "s.db")])
        assert r.exit_code == 1 and "etcd://" in r.output
    finally:
        c.stop()


@needs_etcd
def test_the_proxy_follows_its_records_by_watch_under_rbac(cluster):
    """With its own user, the proxy's record copy is kept by the watch (not by the periodic
    read, pushed out of the test here), and the store never refused it."""
    c, pki = cluster
    p, ctl = login(c, pki, "agent-p"), login(c, pki, "controller")
    records = ProxyRecords(p, "p", resync=60.0).start()
    try:
        ctl.put(keys.proxy("p"), ProxyPorts((ProxyPort(port="tv1", mac="02:00:00:00:00:01", vn="v", mab=True),)).to_json())
        deadline = time.monotonic() + 5
        while "tv1" not in records.current and time.monotonic() < deadline:
            time.sleep(0.01)
        assert set(records.current) == {"tv1"} and not records.polling
    finally:
        records.stop()
        p.close()
        ctl.close()
