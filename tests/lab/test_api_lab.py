"""`tenet api` on a running lab, as a cloud platform calls it: a tenant creates a VN and two VMs
over HTTP with ?wait=applied, and the first ping between them answers; another tenant sees none
of it; a re-rate and a power operation go through the same API."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tenet.lab.lab import Lab

from api_process import serving
from waiting import wait

TOPOLOGY = Path(__file__).with_name("api.yaml")


class Api:
    def __init__(self, base: str, tokens: dict) -> None:
        self.base, self.tokens = base, tokens

    def call(self, method: str, path: str, body: dict | None = None, token: str = "admin") -> tuple[int, dict]:
        key = self.tokens["admin"] if token == "admin" else self.tokens["tenants"][token]
        req = urllib.request.Request(self.base + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


@pytest.fixture(scope="module")
def lab():
    with Lab.load(TOPOLOGY) as lab:
        yield lab


@pytest.fixture(scope="module")
def api(lab):
    with serving(lab) as (base, tokens):
        yield Api(base, tokens)


def ping(vm: str, lab: Lab, *argv: str):
    """From a VM the API created: the lab as its store now describes it."""
    return Lab.running(lab.name).exec(vm, "ping", *argv)


def test_a_tenant_builds_a_vn_and_two_vms_and_they_talk_at_once(lab, api):
    status, body = api.call("PUT", "/v1/networks/a2", {"vnid": 9102, "subnet": "10.91.2.0/24"}, token="acme")
    assert status == 201, body
    for vm, host, ip in (("x", "h1", "10.91.2.1/24"), ("y", "h3", "10.91.2.2/24")):
        status, body = api.call("PUT", f"/v1/vms/{vm}?wait=applied&timeout=60",
                                {"host": host, "nics": [{"network": "a2", "ip": ip}]}, token="acme")
        assert status == 201, body
        assert set(body["applied"]) == {"h1", "h2", "h3"}
    # applied means forwarding: the very first echo request is answered (x on h1, y behind the router)
    r = ping("x", lab, "-c1", "-W2", "10.91.2.2")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ping("y", lab, "-c1", "-W2", "10.91.2.1").returncode == 0


def test_another_tenant_sees_nothing_of_it(lab, api):
    assert api.call("GET", "/v1/vms", token="globex") == (200, {})
    assert api.call("GET", "/v1/networks/a2", token="globex")[0] == 404
    assert api.call("DELETE", "/v1/vms/x", token="globex")[0] == 404
    status, body = api.call("PUT", "/v1/vms/z", {"host": "h1", "nics": [{"network": "a2"}]}, token="globex")
    assert status == 422 and body["problems"][0]["path"] == "vms.z.nics[0].network"
    assert "z" not in {vm.name for vm in Lab.running(lab.name).intent.vms}


def test_a_bad_write_names_its_problem_and_changes_nothing(lab, api):
    before = Lab.running(lab.name).intent
    status, body = api.call("PUT", "/v1/vms/w", {"host": "h9", "nics": [{"network": "a1", "ip": "10.91.1.1/24"}]},
                            token="acme")
    assert status == 422
    problems = {p["path"]: p["message"] for p in body["problems"]}
    assert "vms.w.host" in problems and any("already used" in m for m in problems.values()), problems
    assert Lab.running(lab.name).intent == before


def test_pause_over_http_stops_forwarding_and_resume_brings_it_back(lab, api):
    status, body = api.call("POST", "/v1/vms/y/pause?wait=applied", token="acme")
    assert status == 200, body
    assert ping("x", lab, "-c1", "-W1", "10.91.2.2").returncode != 0
    status, body = api.call("POST", "/v1/vms/y/resume?wait=applied", token="acme")
    assert status == 200, body
    assert ping("x", lab, "-c1", "-W2", "10.91.2.2").returncode == 0


def test_the_admin_sees_hosts_and_their_tables(lab, api):
    status, hosts = api.call("GET", "/v1/hosts")
    assert status == 200 and {h["name"]: h["state"] for h in hosts} == {"h1": "up", "h2": "up", "h3": "up"}
    status, tables = api.call("GET", "/v1/tables/h1?vn=a2")
    functions = {r["destination"].split()[1]: r["function"] for r in tables["vns"][0]["rows"] if r["destination"] != "Broadcast"}
    assert functions == {"x": "No modification", "y": "Encapsulate (VXLAN)"}
    assert api.call("GET", "/v1/hosts", token="acme")[0] == 403


def test_deleting_a_vm_over_http_removes_it_from_the_lab(lab, api):
    status, _ = api.call("DELETE", "/v1/vms/y?wait=applied", token="acme")
    assert status == 200
    wait(lambda: "y" not in {vm.name for vm in Lab.running(lab.name).intent.vms}, 5, "y gone from the intent")
    assert ping("x", lab, "-c1", "-W1", "10.91.2.2").returncode != 0
