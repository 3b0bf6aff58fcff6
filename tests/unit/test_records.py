"""The store's values (store/records.py): each round-trips, reads what earlier writers stored,
rejects a malformed value naming the field, and no module outside store/ encodes a stored
value by hand."""
import ast
import json
from pathlib import Path

import pytest

from tenet.aaa.provisioning import Provisioning
from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints
from tenet.compute.extmac import allocate
from tenet.model.load import intent_to_doc, load_file
from tenet.model.tenancy import port_name
from tenet.store.intent import write_intent
from tenet.store.records import (
    AdmissionReady, AgentState, AgentStatus, Alive, Chassis, EndpointKind, HostRole, EndpointReport, ExtMac, HostTables,
    Leader, Observed, ProxyPort, ProxyPorts, RecordError,
    ReportedTunnel, Revocation, fabric_to_json, part_from_json, tenancy_to_json,
)

ROOT = Path(__file__).parents[2]
SRC = ROOT / "src" / "tenet"
EXAMPLE = ROOT / "examples" / "datacenter.yaml"

NVO3 = EndpointReport(vn="n1", vnid=5001, mac="02:00:00:00:00:01", port="udp:198.18.9.2:68", host="h1",
                      session=0x1234, identity="alice", ip="10.1.0.9/24",
                      provisioning=Provisioning(vn="n1", rate_down_bps=10_000_000, cos=3),
                      channel="udp:198.18.9.2:68", tunnel=ReportedTunnel("198.18.9.2", 70001, 4790))
DOT1X = EndpointReport(vn="n2", vnid=5002, mac="02:00:00:00:00:02", port="ts0123456789", host="tor1",
                       identity="V", kind=EndpointKind.DOT1X, provisioning=Provisioning(vn="n2", rate_up_bps=20_000_000))

RECORDS = [
    AgentStatus(generation=0, state=AgentState.WAITING_FOR_TABLES),
    AgentStatus(generation=7, state=AgentState.CONVERGED, content_hash="abcdef0123456789"),
    AgentStatus(generation=7, state=AgentState.WAITING_FOR_PORTS, content_hash="ab", missing_ports=("tv1", "tv2")),
    AgentStatus(generation=9, state=AgentState.CONVERGED, content_hash="cd", provisional=2),
    AgentStatus(generation=-1, state=AgentState.ERROR, error="netlink: permission denied"),
    AdmissionReady(pid=4242, serves=("n1", "n2"), shard=1, shards=3),
    AdmissionReady(pid=1, serves=()),
    Revocation(),
    Revocation("over quota"),
    Revocation("over quota", vn="blue"),
    NVO3,
    DOT1X,
    EndpointReport(vn="n1", vnid=1, mac="02:00:00:00:00:03", port="tv3", host="h2"),
    ExtMac("02:aa:00:00:00:01"),
    Leader(name="ctl-a:4242", pid=4242, since=1_700_000_000.25),
    Observed(revision=917, leader="ctl-a:4242"),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: type(r).__name__)
def test_round_trip(record):
    data = record.to_json()
    assert isinstance(data, bytes)
    assert type(record).from_json(data) == record
    assert type(record).from_json(data.decode()) == record


def test_host_tables_round_trip_through_the_record():
    intent = load_file(EXAMPLE)
    eps = declared_endpoints(intent)
    for tables in compute_tables(intent, eps, allocate([e.key for e in eps], {})).values():
        back = HostTables.from_json(tables.to_json())
        assert back == tables


def test_intent_round_trip_through_its_two_parts():
    from tenet.model.load import load_fabric, load_tenancy
    intent = load_file(EXAMPLE)
    fabric = load_fabric(part_from_json(fabric_to_json(intent), "fabric"))
    tenancy = part_from_json(tenancy_to_json(intent), "tenancy")  # the editable document: names, not objects
    assert load_tenancy(tenancy, fabric, intent.name) == intent
    assert set(tenancy["vms"]) == {v.name for v in intent.vms if not v.router} and "hosts" not in tenancy


def test_chassis_and_alive_round_trip_and_reject():
    c = Chassis(host="h1", network="pn1", address="198.18.1.10/24", uplink="up0", role=HostRole.ACCESS_SWITCH,
                authenticator=True, mab=True)
    assert Chassis.from_json(c.to_json()) == c
    assert c.fabric_entry() == ("switches", {"network": "pn1", "ip": "198.18.1.10", "capability": 100, "mab": True,
                                             "admission_shards": 1, "uplink": "up0"})
    nve = Chassis(host="h4", network="pn1", address="198.18.1.14/24", uplink="up0", role=HostRole.ACCESS_SWITCH)
    assert nve.fabric_entry()[0] == "hosts"  # an NVE of the access-switch kind, not an 802.1X authenticator
    with pytest.raises(RecordError, match="chassis.role: .spine. is none of"):
        Chassis.from_json(b'{"host": "h1", "network": "pn1", "address": "a", "uplink": "u", "role": "spine"}')
    with pytest.raises(RecordError, match="chassis.address: missing"):
        Chassis.from_json(b'{"host": "h1", "network": "pn1", "uplink": "u"}')
    assert Alive.from_json(Alive(pid=7, since=1.5).to_json()) == Alive(pid=7, since=1.5)


# -- what today's (and earlier) writers stored reads back ------------------------------------
def test_agent_status_bytes_are_what_the_agent_always_wrote():
    """The lab and `tenet lab status` of an older checkout read these: same keys, same form."""
    def old(d):
        return json.dumps(d, sort_keys=True).encode()

    assert AgentStatus(generation=0, state=AgentState.WAITING_FOR_TABLES).to_json() == \
        old({"generation": 0, "state": "waiting for tables"})
    assert AgentStatus(generation=3, state=AgentState.CONVERGED, content_hash="h").to_json() == \
        old({"generation": 3, "content_hash": "h", "missing_ports": [], "state": "converged"})
    assert AgentStatus(generation=3, state=AgentState.WAITING_FOR_PORTS, content_hash="h",
                       missing_ports=("a", "b")).to_json() == \
        old({"generation": 3, "content_hash": "h", "missing_ports": ["a", "b"], "state": "waiting for ports"})
    assert AgentStatus(generation=-1, state=AgentState.ERROR, error="x").to_json() == \
        old({"generation": -1, "state": "error", "error": "x"})


def test_endpoint_reports_as_stored_before_records():
    nvo3 = {"vn": "n1", "vnid": 5001, "mac": "02:00:00:00:00:01", "port": "udp:198.18.9.2:68", "host": "h1",
            "session": 0x1234, "identity": "alice", "ip": "10.1.0.9/24",
            "provisioning": {"vn": "n1", "vnid": None, "vlan": None, "rate_bps": 10_000_000, "cos": 3,
                             "session_timeout": None, "filter_id": None, "ip": None},  # before rates had directions
            "channel": "udp:198.18.9.2:68", "tunnel": {"remote": "198.18.9.2", "vni": 70001, "udp_port": 4790}}
    assert EndpointReport.from_json(json.dumps(nvo3)) == NVO3  # no `kind`: NVO3
    dot1x = {"vn": "n2", "vnid": 5002, "mac": "02:00:00:00:00:02", "port": "ts0123456789", "host": "tor1",
             "session": 0, "identity": "V", "ip": "", "kind": "8021x",
             "provisioning": {"vn": "n2", "rate_up_bps": 20_000_000}}
    assert EndpointReport.from_json(json.dumps(dot1x)) == DOT1X
    plain = EndpointReport.from_json(json.dumps({"vn": "n1", "vnid": 1, "mac": "m", "port": "p", "host": "h",
                                                 "provisioning": None}))
    assert plain.provisioning is None and plain.tunnel is None and plain.channel == "" and plain.session == 0


def test_endpoint_report_keeps_every_key_it_had():
    """Readers of the JSON (`tenet endpoints --json`, scripts) find what they found before."""
    d = json.loads(NVO3.to_json())
    assert {"vn", "vnid", "mac", "port", "host", "session", "identity", "ip", "provisioning", "channel",
            "tunnel"} <= set(d)
    assert d["tunnel"] == {"remote": "198.18.9.2", "vni": 70001, "udp_port": 4790}
    assert d["provisioning"]["rate_down_bps"] == 10_000_000 and d["kind"] == "nvo3"


def test_older_stored_forms():
    assert ExtMac.from_json(b"02:aa:00:00:00:01") == ExtMac("02:aa:00:00:00:01")  # bare text, as controllers wrote
    assert AdmissionReady.from_json(b'{"pid": 9, "serves": ["n1"]}') == AdmissionReady(pid=9, serves=("n1",))
    assert Revocation.from_json(b"{}") == Revocation()
    assert Revocation.from_json(b'{"why": "audit"}') == Revocation("audit", vn="")  # before the VN was recorded


# -- malformed values are rejected, naming the field -----------------------------------------
@pytest.mark.parametrize("cls, data, field", [
    (AgentStatus, b'{"state": "converged"}', "agent status.generation: missing"),
    (AgentStatus, b'{"generation": "3", "state": "converged"}', "agent status.generation: expected int"),
    (AgentStatus, b'{"generation": true, "state": "converged"}', "agent status.generation: expected int"),
    (AgentStatus, b'{"generation": 3, "state": "happy"}', "agent status.state: 'happy' is none of"),
    (AgentStatus, b'{"generation": 3, "state": "converged", "missing_ports": [1]}', "agent status.missing_ports"),
    (AgentStatus, b"[1, 2]", "agent status: expected a JSON object"),
    (AgentStatus, b"{not json", "agent status: not JSON"),
    (AdmissionReady, b'{"serves": []}', "admission ready.pid: missing"),
    (AdmissionReady, b'{"pid": 1, "serves": "n1"}', "admission ready.serves: expected list"),
    (AdmissionReady, b'{"pid": 1, "serves": [], "shard": 3, "shards": 2}', "admission ready.shard"),
    (Revocation, b'{"why": 7}', "revocation.why: expected str"),
    (Revocation, b'{"vn": ["blue"]}', "revocation.vn: expected str"),
    (EndpointReport, b'{"vn": "n1", "vnid": 1, "port": "p", "host": "h"}', "endpoint report.mac: missing"),
    (EndpointReport, b'{"vn": "n1", "vnid": 1, "mac": "m", "port": "p", "host": "h", "kind": "wifi"}',
     "endpoint report.kind: 'wifi'"),
    (EndpointReport, b'{"vn": "n1", "vnid": 1, "mac": "m", "port": "p", "host": "h", "tunnel": {"remote": "x"}}',
     "endpoint report.tunnel.vni: missing"),
    (EndpointReport, b'{"vn": "n1", "vnid": 1, "mac": "m", "port": "p", "host": "h", "provisioning": {"speed": 1}}',
     "endpoint report.provisioning"),
    (EndpointReport, b'{"vn": "n1", "vnid": 1, "mac": "m", "port": "p", "host": "h", "provisioning": 5}',
     "endpoint report.provisioning: expected dict"),
    (ExtMac, b'"not a mac"', "external MAC.mac"),
    (Leader, b'{"name": "a", "pid": "1", "since": 0}', "leader.pid: expected int"),
    (Leader, b'{"name": "a", "pid": 1}', "leader.since: missing"),
    (Observed, b'{"revision": 3}', "observed.leader: missing"),
    (ExtMac, b'"02:aa', "external MAC: not JSON"),
    (ExtMac, b"\xfb\xa8", "external MAC: not UTF-8"),  # bench/fuzz.py: was UnicodeDecodeError
    (ExtMac, b'"zz:zz:zz:zz:zz:zz"', "is not a MAC address"),  # six colon-separated parts were enough
])
def test_malformed_is_rejected_naming_the_field(cls, data, field):
    with pytest.raises(RecordError) as e:
        cls.from_json(data)
    assert field in str(e.value)


def test_malformed_tables_name_the_field():
    intent = load_file(EXAMPLE)
    eps = declared_endpoints(intent)
    tables = next(iter(compute_tables(intent, eps, allocate([e.key for e in eps], {})).values()))
    d = json.loads(tables.to_json())
    del d["uplink"]
    with pytest.raises(ValueError, match="uplink"):
        HostTables.from_json(json.dumps(d))
    with pytest.raises(ValueError, match="host tables"):
        HostTables.from_json(b"{broken")


def test_a_bad_part_is_an_error_not_a_crash():
    from tenet.model.errors import IntentError
    from tenet.model.load import load_fabric
    with pytest.raises(RecordError, match="tenancy: expected a JSON object"):
        part_from_json(b"[]", "tenancy")
    with pytest.raises(IntentError):
        load_fabric(part_from_json(b'{"name": "x"}', "fabric"))


# -- only store/records.py encodes what goes into the store ----------------------------------
RECORD_ENCODERS = {"fabric_to_json", "tenancy_to_json"}  # module-level encoders in store/records.py besides the to_json methods


def _encoded_by_a_record(value: ast.expr) -> bool:
    if not isinstance(value, ast.Call):
        return False
    f = value.func
    return (isinstance(f, ast.Attribute) and f.attr == "to_json") or (isinstance(f, ast.Name) and f.id in RECORD_ENCODERS)


def hand_encoded(source: str, name: str = "<src>") -> list[str]:
    """Every put of a value not made by a record's to_json, and every json.loads of a stored
    value (`….value`): where a dict would cross a process boundary untyped."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        is_put = (isinstance(f, ast.Name) and f.id == "Put") or (isinstance(f, ast.Attribute) and f.attr == "put")
        value = node.args[1] if len(node.args) >= 2 else next((k.value for k in node.keywords if k.arg == "value"), None)
        if is_put and value is not None and not _encoded_by_a_record(value):
            found.append(f"{name}:{node.lineno} puts {ast.unparse(value)}")
        is_loads = isinstance(f, ast.Attribute) and f.attr == "loads" and isinstance(f.value, ast.Name) and f.value.id == "json"
        if is_loads and node.args and any(isinstance(n, ast.Attribute) and n.attr == "value" for n in ast.walk(node.args[0])):
            found.append(f"{name}:{node.lineno} decodes {ast.unparse(node.args[0])} by hand")
    return found


def test_no_module_outside_store_encodes_a_stored_value():
    files = [f for f in sorted(SRC.rglob("*.py")) if f.relative_to(SRC).parts[0] != "store"]
    assert len(files) > 50
    found = [x for f in files for x in hand_encoded(f.read_text(), str(f.relative_to(SRC)))]
    assert not found, "\n".join(found)


def test_the_scan_sees_a_hand_encoded_value():
    bad = ('store.put(keys.status(h), json.dumps(status).encode())\n'
           'Put(keys.revoke(h, mac), b\'{"why": "x"}\')\n'
           'r = json.loads(kv.value)["mac"]\n')
    assert len(hand_encoded(bad)) == 3
    good = ("store.put(keys.status(h), status.to_json())\nPut(keys.tenancy(), tenancy_to_json(i))\n"
            "q.put((Put(k, r.to_json()), ''))\n")
    assert hand_encoded(good) == []


# -- an 802.1X proxy host gets its own VMs' credentials, never the intent ---------------------
DOT1X_LAB = ROOT / "tests" / "lab" / "dot1x.yaml"


def test_proxy_ports_round_trip_and_reject():
    ports = ProxyPorts((ProxyPort(port="tv1", mac="02:00:00:00:00:01", vn="n2", identity="V", password="s3cret"),
                        ProxyPort(port="tv2", mac="02:00:00:00:00:02", vn="n3", mab=True)))
    assert ProxyPorts.from_json(ports.to_json()) == ports
    with pytest.raises(RecordError, match=r"proxy ports.ports\[0\].mac: missing"):
        ProxyPorts.from_json(b'{"ports": [{"port": "tv1", "vn": "n2", "mab": true}]}')
    with pytest.raises(RecordError, match="tv1: 802.1X needs an identity and a password"):
        ProxyPorts.from_json(b'{"ports": [{"port": "tv1", "mac": "m", "vn": "n2", "identity": "V"}]}')


def test_each_proxy_host_is_published_only_its_own_vms(tmp_path):
    from tenet.controller.publish import publish
    from tenet.model.load import load_intent
    from tenet.store import keys
    from tenet.store.open import open_store

    doc = intent_to_doc(load_file(DOT1X_LAB))
    doc["hosts"]["host7"] = {"switch": "tor1"}  # a second host behind the switch, with W on it
    doc["vms"]["W"]["host"] = "host7"
    intent = load_intent(doc)
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    write_intent(store, intent)
    publish(store)

    def published(host):
        return ProxyPorts.from_json(store.get(keys.proxy(host)).value)

    mac = {vm.name: vm.nics[0].mac for vm in intent.vms}
    six, seven = published("host6"), published("host7")
    assert {p.mac for p in six.ports} == {mac["V"], mac["M"], mac["B"], mac["C"]}
    assert "w0rd" not in six.to_json().decode()  # W's password is only where W is
    assert seven.ports == (ProxyPort(port=port_name("W", 0), mac=mac["W"], vn="n3", identity="vm-w",
                                     password="w0rd"),)
    assert {(p.mab, p.identity) for p in six.ports if p.mac in (mac["B"], mac["C"])} == {(True, "")}
    rev = store.revision()
    publish(store)  # unchanged: nothing rewritten
    assert store.revision() == rev
    doc["vms"]["W"]["host"] = "host6"  # W moves back: both hosts' ports follow
    write_intent(store, load_intent(doc))
    publish(store)
    assert mac["W"] in {p.mac for p in published("host6").ports} and published("host7").ports == ()
    store.close()
