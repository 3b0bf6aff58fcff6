"""The REST API (api/) on a real SQLite store: every route, the admin's and tenants' tokens, the
loader's problems as JSON, compare-and-swap writes and the write-only credentials."""
from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from tenet.api.app import create_app
from tenet.api.auth import Tokens, TokensError
from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints
from tenet.compute.extmac import allocate
from tenet.model.load import load_intent
from tenet.site import Site
from tenet.store import keys
from tenet.store.base import Put
from tenet.store.intent import read_intent, write_intent
from tenet.store.open import open_store
from tenet.store.published import Publisher
from tenet.store.records import EndpointReport, Revocation

DOC = {
    "name": "tapi",
    "underlay": {"networks": {"pn1": {"subnet": "198.19.41.0/24", "capacity": "1gbit"}}},
    "hosts": {"h1": {"network": "pn1"}, "h2": {"network": "pn1"}},
    "tenants": ["acme", "globex"],
    "networks": {"a1": {"vnid": 4101, "tenant": "acme", "subnet": "10.41.0.0/24"},
                 "g1": {"vnid": 4201, "tenant": "globex", "subnet": "10.42.0.0/24"}},
    "aaa": {"users": {"alice": {"password": "wonderland", "network": "a1"},
                      "gus": {"password": "secret-g", "network": "g1"}}},
    "vms": {"va": {"host": "h1", "nics": [{"network": "a1", "ip": "10.41.0.5/24"}]},
            "vb": {"host": "h2", "nics": [{"network": "a1", "ip": "10.41.0.6/24"}]},
            "vg": {"host": "h2", "nics": [{"network": "g1", "ip": "10.42.0.5/24",
                                           "join": "discover", "identity": "gus", "password": "secret-g"}]}},
    "vrouters": {"ra": {"host": "h1", "tenant": "acme", "nics": [{"network": "a1", "ip": "10.41.0.1/24"}]},
                 "rb": {"host": "h2", "tenant": "acme"}},
    "vlinks": {"lab": {"between": ["ra", "rb"], "vnid": 4109, "subnet": "10.49.0.0/30", "guarantee": "10mbit"}},
}
ADMIN, ACME, GLOBEX = "admin-token-0123456789", "acme-token-0123456789", "globex-token-0123456789"
TOKENS = Tokens(ADMIN, (("acme", ACME), ("globex", GLOBEX)))


@pytest.fixture
def url(tmp_path):
    u = f"sqlite:///{tmp_path / 'store.db'}"
    s = open_store(u)
    write_intent(s, load_intent(DOC))
    s.close()
    return u


@pytest.fixture
def client(url):
    return TestClient(create_app(Site(url), lambda: TOKENS))


def as_(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def intent(url):
    s = open_store(url)
    try:
        return read_intent(s)
    finally:
        s.close()


# -- who may do what --------------------------------------------------------------------------
def test_no_token_or_a_wrong_one_is_401(client):
    assert client.get("/v1/networks").status_code == 401
    r = client.get("/v1/networks", headers=as_("not-a-token"))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"


def test_the_admin_sees_every_tenant_a_tenant_only_its_own(client):
    assert set(client.get("/v1/networks", headers=as_(ADMIN)).json()) == {"a1", "g1"}
    assert set(client.get("/v1/networks", headers=as_(ACME)).json()) == {"a1"}
    assert set(client.get("/v1/vms", headers=as_(GLOBEX)).json()) == {"vg"}
    assert set(client.get("/v1/users", headers=as_(ACME)).json()) == {"alice"}
    assert set(client.get("/v1/vrouters", headers=as_(ACME)).json()) == {"ra", "rb"}
    assert set(client.get("/v1/vlinks", headers=as_(GLOBEX)).json()) == set()
    assert client.get("/v1/tenants", headers=as_(GLOBEX)).json() == {"globex": {}}


def test_another_tenants_object_is_404_not_403(client, url):
    for path in ("/v1/networks/g1", "/v1/vms/vg", "/v1/users/gus"):
        r = client.get(path, headers=as_(ACME))
        assert r.status_code == 404 and "no " in r.json()["detail"], path
        assert client.get(path.replace("g1", "zz").replace("vg", "zz").replace("gus", "zz"),
                          headers=as_(ACME)).status_code == 404
    assert client.delete("/v1/vms/vg", headers=as_(ACME)).status_code == 404
    assert client.post("/v1/vms/vg/pause", headers=as_(ACME)).status_code == 404
    assert client.post("/v1/vlinks/lab/rate", json={"limit": "20mbit"}, headers=as_(GLOBEX)).status_code == 404
    assert "vg" in {vm.name for vm in intent(url).vms}


def test_the_fabric_is_the_admins(client):
    for path in ("/v1/hosts", "/v1/tables/h1", "/v1/controllers"):
        assert client.get(path, headers=as_(ACME)).status_code == 403, path
    assert client.put("/v1/tenants/initech", json={}, headers=as_(ACME)).status_code == 403


# -- the tenancy's resources ------------------------------------------------------------------
def test_a_tenant_creates_a_network_and_a_vm_in_it(client, url):
    r = client.put("/v1/networks/a2", json={"vnid": 4102, "subnet": "10.43.0.0/24"}, headers=as_(ACME))
    assert r.status_code == 201 and r.json()["revision"] > 0
    r = client.put("/v1/vms/vc", json={"host": "h1", "nics": [{"network": "a2", "ip": "10.43.0.1/24"}]}, headers=as_(ACME))
    assert r.status_code == 201, r.text
    got = intent(url)
    assert got.vn("a2").tenant == "acme"  # the token's tenant, when the body names none
    vc = next(vm for vm in got.vms if vm.name == "vc")
    assert vc.host == "h1" and vc.nics[0].mac  # the loader generated its MAC, as for a file
    assert client.get("/v1/vms/vc", headers=as_(ACME)).json()["nics"][0]["mac"] == vc.nics[0].mac
    again = client.put("/v1/vms/vc", json={"host": "h2", "nics": [{"network": "a2", "ip": "10.43.0.1/24"}]},
                       headers=as_(ACME))
    assert again.status_code == 200 and next(vm for vm in intent(url).vms if vm.name == "vc").host == "h2"


def test_the_loaders_problems_come_back_as_json_and_nothing_is_written(client, url):
    before = intent(url)
    r = client.put("/v1/vms/vx", json={"host": "h9", "nics": [{"network": "a1", "ip": "10.99.0.1/24"}]}, headers=as_(ADMIN))
    assert r.status_code == 422
    paths = {p["path"]: p["message"] for p in r.json()["problems"]}
    assert "vms.vx.host" in paths and "h9" in paths["vms.vx.host"]
    assert any(p.startswith("vms.vx.nics[0]") for p in paths), paths
    r = client.put("/v1/networks/bad", json={"vnid": 4101}, headers=as_(ADMIN))
    assert r.status_code == 422 and any("vnid" in p["path"] for p in r.json()["problems"])
    r = client.put("/v1/networks/bad", json={"vnid": 4103, "colour": "red"}, headers=as_(ADMIN))
    assert r.status_code == 422  # an unknown field: FastAPI's own check
    assert intent(url) == before


def test_a_tenant_cannot_reach_into_another_tenant(client, url):
    before = intent(url)
    r = client.put("/v1/vms/vz", json={"host": "h1", "nics": [{"network": "g1"}]}, headers=as_(ACME))
    assert r.status_code == 422 and r.json()["problems"] == [{"path": "vms.vz.nics[0].network",
                                                              "message": "no network named 'g1'"}]
    r = client.put("/v1/networks/a9", json={"vnid": 4109, "tenant": "globex"}, headers=as_(ACME))
    assert r.status_code == 403
    r = client.put("/v1/networks/a9", json={"vnid": 4201}, headers=as_(ACME))  # g1's VN-ID
    assert r.status_code == 422 and "g1" not in r.text and "globex" not in r.text
    r = client.put("/v1/vlinks/l2", json={"between": ["ra", "rg"], "vnid": 4110, "subnet": "10.49.0.4/30"},
                   headers=as_(ACME))
    assert r.status_code == 422 and "between[1]" in r.text
    assert intent(url) == before


def test_credentials_are_write_only_and_kept_on_a_rewrite(client, url):
    r = client.get("/v1/users/alice", headers=as_(ACME))
    assert r.json() == {"network": "a1"}
    assert "password" not in client.get("/v1/vms/vg", headers=as_(GLOBEX)).text
    r = client.put("/v1/users/alice", json={"network": "a1", "rate": "20mbit"}, headers=as_(ACME))
    assert r.status_code == 200, r.text
    alice = next(u for u in intent(url).aaa if u.name == "alice")
    assert alice.password == "wonderland" and alice.rate == "20mbit"
    vg = client.get("/v1/vms/vg", headers=as_(GLOBEX)).json()
    assert client.put("/v1/vms/vg", json=vg, headers=as_(GLOBEX)).status_code == 200
    assert next(vm for vm in intent(url).vms if vm.name == "vg").nics[0].password == "secret-g"
    r = client.put("/v1/users/bob", json={"network": "a1"}, headers=as_(ACME))
    assert r.status_code == 422 and r.json()["problems"][0]["path"] == "aaa.users.bob.password"


def test_delete_removes_and_a_second_delete_is_404(client, url):
    assert client.delete("/v1/users/alice", headers=as_(ACME)).status_code == 200
    assert "alice" not in {u.name for u in intent(url).aaa}
    assert client.delete("/v1/users/alice", headers=as_(ACME)).status_code == 404
    r = client.delete("/v1/networks/a1", headers=as_(ADMIN))  # VMs still on it: the loader says so
    assert r.status_code == 422


def test_tenants_are_the_admins_to_create_and_remove(client, url):
    assert client.put("/v1/tenants/initech", json={}, headers=as_(ADMIN)).status_code == 201
    assert "initech" in intent(url).tenants
    assert client.delete("/v1/tenants/initech", headers=as_(ADMIN)).status_code == 200
    assert "initech" not in intent(url).tenants


def test_a_write_that_changes_nothing_writes_nothing(client):
    spec = client.get("/v1/networks/a1", headers=as_(ADMIN)).json()
    r = client.put("/v1/networks/a1", json=spec, headers=as_(ADMIN))
    assert r.status_code == 200 and r.json()["revision"] is None


# -- operations -------------------------------------------------------------------------------
def test_rerate_a_link(client, url):
    r = client.post("/v1/vlinks/lab/rate", json={"guarantee": "30mbit", "limit": "40mbit"}, headers=as_(ACME))
    assert r.status_code == 200, r.text
    vl = intent(url).vlinks[0]
    assert (vl.guarantee_bps, vl.limit_bps) == (30_000_000, 40_000_000)
    assert client.post("/v1/vlinks/lab/rate", json={}, headers=as_(ACME)).status_code == 422


def test_power_operations_on_a_deployment_edit_the_state(client, url):
    assert client.post("/v1/vms/va/pause", headers=as_(ACME)).status_code == 200
    assert next(vm for vm in intent(url).vms if vm.name == "va").state.value == "paused"
    assert client.post("/v1/vms/va/resume", headers=as_(ACME)).status_code == 200
    assert next(vm for vm in intent(url).vms if vm.name == "va").state.value == "running"
    assert client.post("/v1/vrouters/rb/stop", headers=as_(ACME)).status_code == 200
    assert client.post("/v1/vms/va/explode", headers=as_(ACME)).status_code == 422


def test_migrate_and_copy_need_a_hypervisor_this_site_drives(client):
    r = client.post("/v1/vms/va/migrate", json={"to": "h2"}, headers=as_(ADMIN))
    assert r.status_code == 409 and "hypervisor" in r.json()["detail"]
    assert client.post("/v1/vms/va/migrate", json={"to": "h2"}, headers=as_(ACME)).status_code == 403
    assert client.post("/v1/vms/va/copy", json={"name": "vd"}, headers=as_(ACME)).status_code == 409


def test_wait_applied_says_who_has_not_applied(client):
    r = client.put("/v1/networks/a3?wait=applied&timeout=0.2", json={"vnid": 4103}, headers=as_(ACME))
    assert r.status_code == 504 and "revision" in r.json()["detail"]  # no controller runs here


# -- what the system is doing -----------------------------------------------------------------
def report(host: str, vn: str, mac: str) -> EndpointReport:
    return EndpointReport(host=host, vn=vn, vnid=1, mac=mac, port="tp0", session=7, identity="x")


def test_endpoints_are_scoped_and_detach_asks_the_nve(client, url):
    s = open_store(url)
    s.txn([], [Put(keys.endpoint("h2", "g1", "02:00:00:00:00:01"), report("h2", "g1", "02:00:00:00:00:01").to_json()),
               Put(keys.endpoint("h1", "a1", "02:00:00:00:00:02"), report("h1", "a1", "02:00:00:00:00:02").to_json())])
    assert [e["mac"] for e in client.get("/v1/endpoints", headers=as_(ACME)).json()] == ["02:00:00:00:00:02"]
    assert len(client.get("/v1/endpoints", headers=as_(ADMIN)).json()) == 2
    assert client.post("/v1/endpoints/02:00:00:00:00:01/detach", json={}, headers=as_(ACME)).status_code == 404
    r = client.post("/v1/endpoints/02-00-00-00-00-01/detach", json={"why": "audit"}, headers=as_(GLOBEX))
    assert r.status_code == 200 and r.json()["asked"] == ["h2"]
    assert Revocation.from_json(s.get(keys.revoke("h2", "02:00:00:00:00:01", "g1")).value) == Revocation("audit", "g1")
    s.close()


def test_a_tenants_detach_spares_another_tenants_tes_of_the_same_mac_on_the_same_host(client, url):
    """Tenants reuse MACs: ACME's detach asks h1 to end the session in ACME's VN only."""
    mac = "02:00:00:00:00:09"
    s = open_store(url)
    s.txn([], [Put(keys.endpoint("h1", vn, mac), report("h1", vn, mac).to_json()) for vn in ("a1", "g1")])
    r = client.post(f"/v1/endpoints/{mac}/detach", json={"why": "mine"}, headers=as_(ACME))
    assert r.status_code == 200 and r.json()["asked"] == ["h1"]
    asked = {kv.key: Revocation.from_json(kv.value) for kv in s.range(keys.revoke_prefix("h1"))}
    assert asked == {keys.revoke("h1", mac, "a1"): Revocation("mine", "a1")}
    s.close()


def test_hosts_tables_and_controllers(client, url):
    s = open_store(url)
    i = read_intent(s)
    eps = declared_endpoints(i)
    tables = compute_tables(i, eps, allocate([e.key for e in eps], {}))
    ops, _ = Publisher().ops(tables, tables)
    s.txn([], ops)
    s.close()
    hosts = client.get("/v1/hosts", headers=as_(ADMIN)).json()
    assert {h["name"] for h in hosts} == {"h1", "h2"} and all(h["published"] == 1 for h in hosts)
    t = client.get("/v1/tables/h1?vn=a1", headers=as_(ADMIN)).json()
    assert t["generation"] == 1 and [v["vn"] for v in t["vns"]] == ["a1"]
    assert any(r["destination"].startswith("Unicast vb") and r["function"] == "Translate L2 address" for r in t["vns"][0]["rows"])
    assert client.get("/v1/tables/h1?vn=g1", headers=as_(ADMIN)).status_code == 404
    assert client.get("/v1/tables/h9", headers=as_(ADMIN)).status_code == 404
    assert client.get("/v1/controllers", headers=as_(ADMIN)).json()["leader"] is None
    t = client.get("/v1/trace", params={"from": "va", "to": "10.41.0.6"}, headers=as_(ADMIN)).json()
    assert [s for s in t["steps"] if s["step"] == "deliver"][0]["host"] == "h2", t
    assert client.get("/v1/trace", params={"from": "nobody", "to": "10.41.0.6"}, headers=as_(ADMIN)).status_code == 404
    assert client.get("/v1/trace", params={"from": "va", "to": "10.41.0.6"}, headers=as_(ACME)).status_code == 403
    assert client.get("/v1/verify", headers=as_(ADMIN)).json() == {"ok": True, "hosts": 2, "findings": []}
    s = open_store(url)  # a planted fault: h1's table loses its row for vb, which is then reached by none
    ht = tables["h1"]
    a1 = next(t for t in ht.vns if t.vn == "a1")
    a1 = replace(a1, entries=tuple(e for e in a1.entries if e.vm != "vb"))
    ops, _ = Publisher().ops({"h1": replace(ht, vns=tuple(a1 if t.vn == "a1" else t for t in ht.vns))}, ["h1"])
    s.txn([], ops)
    s.close()
    v = client.get("/v1/verify", headers=as_(ADMIN)).json()
    assert not v["ok"] and {(f["host"], f["vn"]) for f in v["findings"]} >= {("h1", "a1")}, v


def test_openapi_and_docs_are_served(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.") and "/v1/vms/{name}" in spec["paths"]
    assert client.get("/docs").status_code == 200


def test_a_tokens_file_is_checked():
    with pytest.raises(TokensError, match="16 characters"):
        Tokens.from_json('{"admin": "short"}')
    with pytest.raises(TokensError, match="twice"):
        Tokens.from_json('{"admin": "%s", "tenants": {"a": "%s"}}' % (ADMIN, ADMIN))
    assert Tokens.from_json(TOKENS.to_json()) == TOKENS


def test_tokens_added_rotated_and_withdrawn_take_effect_without_a_restart(tmp_path, url):
    from typer.testing import CliRunner

    from tenet.api.auth import TokensFile, save
    from tenet.cli.main import app

    path = tmp_path / "tokens.json"
    save(path, TOKENS)
    assert path.stat().st_mode & 0o777 == 0o600
    source = TokensFile(path)
    client = TestClient(create_app(Site(url), lambda: source.tokens))
    run = CliRunner().invoke
    r = run(app, ["token", "add", "initech", "--tokens", str(path)])
    assert r.exit_code == 0, r.output
    initech = r.output.strip()
    assert client.get("/v1/networks", headers=as_(initech)).json() == {}  # a tenant with no VN yet
    r = run(app, ["token", "add", "acme", "--tokens", str(path)])  # rotated: the old token stops working
    assert client.get("/v1/networks", headers=as_(ACME)).status_code == 401
    assert set(client.get("/v1/networks", headers=as_(r.output.strip())).json()) == {"a1"}
    assert run(app, ["token", "remove", "initech", "--tokens", str(path)]).exit_code == 0
    assert client.get("/v1/networks", headers=as_(initech)).status_code == 401
    r = run(app, ["token", "remove", "initech", "--tokens", str(path)])
    assert r.exit_code == 1 and "no token" in r.output
    path.chmod(0o644)
    r = run(app, ["token", "add", "x", "--tokens", str(path)])
    assert r.exit_code == 1 and "chmod 600" in r.output
