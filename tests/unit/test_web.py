"""The web view's server side (api/graph.py, api/web.py, lab/link_rates.py) on a real SQLite
store: the graph and who sees what of it, the page and its assets, and the event stream over a
real HTTP server (uvicorn in a thread) pushing a store change within the 2 s the page promises."""
from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request

import pytest
import uvicorn

from tenet.aaa.provisioning import Provisioning
from tenet.api.app import create_app
from tenet.api.graph import EdgeKind, NodeKind, build, for_tenant
from tenet.lab.link_rates import sent_bytes
from tenet.model.load import load_intent
from tenet.site import Site
from tenet.store import keys
from tenet.store.intent import set_link
from tenet.store.open import open_store
from tenet.store.records import EndpointReport

import test_api
from test_api import ACME, ADMIN, DOC, GLOBEX, TOKENS, as_

url, client = test_api.url, test_api.client  # the same store and app as test_api's


def vg_report(session: int = 7) -> EndpointReport:
    intent = load_intent(DOC)
    mac = next(vm for vm in intent.vms if vm.name == "vg").nics[0].mac
    return EndpointReport(host="h2", vn="g1", vnid=4201, mac=mac, port="tp0", session=session, identity="gus",
                          provisioning=Provisioning(vn="g1", rate_down_bps=50_000_000))


def test_the_graph_has_the_underlay_and_the_overlay():
    g = build(load_intent(DOC), [], [])
    kinds = {n.id: n.kind for n in g.nodes}
    assert kinds == {"network:pn1": NodeKind.NETWORK, "host:h1": NodeKind.HOST, "host:h2": NodeKind.HOST,
                     "vn:a1": NodeKind.VN, "vn:g1": NodeKind.VN, "vm:va": NodeKind.VM, "vm:vb": NodeKind.VM,
                     "vm:vg": NodeKind.VM, "vrouter:ra": NodeKind.VROUTER, "vrouter:rb": NodeKind.VROUTER}
    link = next(e for e in g.edges if e.kind is EdgeKind.VLINK)  # a link's own VN is drawn as the link
    assert (link.source, link.target, link.info["guarantee_bps"], link.info["limit_bps"]) == ("vrouter:ra", "vrouter:rb", 10_000_000, 0)
    assert next(n for n in g.nodes if n.id == "vn:g1").info["bum"] == "multicast"
    assert {(e.source, e.target) for e in g.edges if e.kind is EdgeKind.UPLINK} == {("host:h1", "network:pn1"), ("host:h2", "network:pn1")}


def test_an_attached_tes_is_marked_on_its_vm_and_an_undeclared_one_is_a_node_of_its_own():
    stray = EndpointReport(host="h1", vn="a1", vnid=4101, mac="02:00:00:00:99:01", port="tp3", session=9, identity="alice")
    g = build(load_intent(DOC), [], [vg_report(), stray])
    vg = next(n for n in g.nodes if n.id == "vm:vg")
    assert vg.info["nics"][0]["attached"] and vg.info["nics"][0]["sessions"][0]["session"] == 7
    assert vg.info["nics"][0]["sessions"][0]["provisioning"]["rate_down_bps"] == 50_000_000
    tes = next(n for n in g.nodes if n.kind is NodeKind.TES)
    assert (tes.name, tes.tenant) == ("alice", "acme")
    assert {(e.kind, e.target) for e in g.edges if e.source == tes.id} == {(EdgeKind.NIC, "vn:a1"), (EdgeKind.PLACED, "host:h1")}
    detached = build(load_intent(DOC), [], [])
    assert not next(n for n in detached.nodes if n.id == "vm:vg").info["nics"][0]["attached"]


def test_a_tenant_sees_its_overlay_and_nothing_else():
    g = for_tenant(build(load_intent(DOC), [], [vg_report()]), "acme")
    assert {n.id for n in g.nodes} == {"vn:a1", "vm:va", "vm:vb", "vrouter:ra", "vrouter:rb"}
    assert not any(n.kind.underlay for n in g.nodes) and all(e.kind is not EdgeKind.PLACED for e in g.edges)
    assert g.endpoints == () and g.scope == "acme"
    assert [r.identity for r in for_tenant(build(load_intent(DOC), [], [vg_report()]), "globex").endpoints] == ["gus"]


def test_the_page_needs_no_token_its_data_does(client):
    page = client.get("/")
    assert page.status_code == 200 and '<script src="/web/web.js">' in page.text
    assert client.get("/web/web.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/web/../app.py").status_code == 404
    assert client.get("/v1/graph").status_code == 401
    assert client.get("/v1/rates").status_code == 401
    assert "/v1/events" not in client.get("/openapi.json").json()["paths"]  # a stream: not for schema-driven clients


def test_graph_and_rates_as_each_caller(client):
    admin = client.get("/v1/graph", headers=as_(ADMIN)).json()
    assert admin["scope"] == "admin" and admin["revision"] > 0 and "host:h1" in {n["id"] for n in admin["nodes"]}
    globex = client.get("/v1/graph", headers=as_(GLOBEX)).json()
    assert {n["id"] for n in globex["nodes"]} == {"vn:g1", "vm:vg"} and globex["edges"][0]["kind"] == "nic"
    rates = client.get("/v1/rates", headers=as_(ACME)).json()
    assert rates["available"] is False and rates["links"] == {}  # a deployment's counters are on its hosts


def test_sent_bytes_reads_tenets_uplink_classes_only():
    out = """class htb 7e03:1 root rate 32Mbit ceil 32Mbit burst 1600b cburst 1600b
 Sent 9000 bytes 60 pkt (dropped 0, overlimits 0 requeues 0)
 backlog 0b 0p requeues 0
class htb 7e03:10 parent 7e03:1 prio 0 rate 10Mbit ceil 32Mbit burst 1600b cburst 1600b
 Sent 1234 bytes 10 pkt (dropped 0, overlimits 0 requeues 0)
 backlog 0b 0p requeues 0
class htb 1:10 parent 1:1 prio 0 rate 1Mbit ceil 1Mbit burst 1600b cburst 1600b
 Sent 77 bytes 1 pkt (dropped 0, overlimits 0 requeues 0)
"""
    assert sent_bytes(out) == {0x1: 9000, 0x10: 1234}


# -- the stream, over real HTTP ----------------------------------------------------------------
@pytest.fixture
def server(url):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(Site(url), lambda: TOKENS), host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    t.join(5)


def events(base: str, token: str):
    """The graph events of one stream, as they come."""
    req = urllib.request.Request(base + "/v1/events", headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        event, data = "", ""
        for raw in r:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data += line[6:]
            elif not line and event:
                yield event, json.loads(data)
                event, data = "", ""


def test_the_stream_sends_the_graph_then_each_change_within_2_s(server, url):
    stream = events(server, ADMIN)
    kind, first = next(stream)
    assert kind == "graph" and first["scope"] == "admin"
    assert next(e for e in first["edges"] if e["kind"] == "vlink")["info"]["limit_bps"] == 0
    s = open_store(url)
    try:
        t0 = time.monotonic()
        set_link(s, "lab", None, "20mbit")
        kind, second = next(stream)
        assert time.monotonic() - t0 < 2.0
        assert next(e for e in second["edges"] if e["kind"] == "vlink")["info"]["limit_bps"] == 20_000_000
        t0 = time.monotonic()
        r = vg_report()
        s.put(keys.endpoint(r.host, r.vn, r.mac), r.to_json())
        kind, third = next(stream)
        assert time.monotonic() - t0 < 2.0 and [e["identity"] for e in third["endpoints"]] == ["gus"]
    finally:
        s.close()


def test_a_tenants_stream_is_its_view_and_hears_nothing_of_others(server, url):
    stream = events(server, ACME)
    kind, first = next(stream)
    assert first["scope"] == "acme" and "vm:vg" not in {n["id"] for n in first["nodes"]}
    s = open_store(url)
    try:
        r = vg_report()
        s.put(keys.endpoint(r.host, r.vn, r.mac), r.to_json())  # globex's: nothing for acme
        set_link(s, "lab", "5mbit", None)
        kind, second = next(stream)
        assert next(e for e in second["edges"] if e["kind"] == "vlink")["info"]["guarantee_bps"] == 5_000_000
        assert second["endpoints"] == []
    finally:
        s.close()
