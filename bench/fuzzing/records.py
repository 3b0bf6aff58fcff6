"""The records agents and controllers read back from the store (store/records.py, the host
tables of compute/tables.py): an etcd member or a host with write access can put anything
under a key. Each promises RecordError (TablesError for the tables), naming the field."""
from __future__ import annotations

import json
from functools import cache
from random import Random

from fuzzing.documents import LAB, parsed
from fuzzing.mutate import havoc, mutate_tree
from fuzzing.run import Target
from tenet.aaa.provisioning import Provisioning
from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints
from tenet.compute.extmac import allocate
from tenet.compute.tables import Servable, TablesError
from tenet.model.load import load_intent
from tenet.store import records as r

KINDS = {k.__name__: k for k in (r.AgentStatus, r.AdmissionReady, r.Revocation, r.EndpointReport, r.ExtMac, r.Leader,
                                 r.Observed, r.Chassis, r.Alive, r.ProxyPorts, r.HostTables, r.TablesHead, r.Servables)}


@cache
def _seeds() -> tuple[tuple[str, bytes], ...]:
    """(record kind, its stored value) for one or more values of every kind."""
    nvo3 = r.EndpointReport(vn="n1", vnid=5001, mac="02:00:00:00:00:01", port="udp:198.18.9.2:68", host="h1",
                            session=0x1234, identity="alice", ip="10.1.0.9/24",
                            provisioning=Provisioning(vn="n1", rate_down_bps=10_000_000, cos=3),
                            channel="udp:198.18.9.2:68", tunnel=r.ReportedTunnel("198.18.9.2", 70001, 4790))
    values: list = [
        r.AgentStatus(generation=7, state=r.AgentState.WAITING_FOR_PORTS, content_hash="ab", missing_ports=("tv1",)),
        r.AdmissionReady(pid=4242, serves=("n1", "n2"), shard=1, shards=3), r.Revocation("over quota"), nvo3,
        r.EndpointReport(vn="n2", vnid=2, mac="02:00:00:00:00:02", port="ts01", host="tor1", kind=r.EndpointKind.DOT1X),
        r.ExtMac("02:aa:00:00:00:01"), r.Leader(name="ctl-a:4242", pid=4242, since=1.7e9), r.Observed(revision=917, leader="a"),
        r.Chassis(host="h1", network="pn1", address="198.18.1.10/24", uplink="eth1"), r.Alive(pid=1, since=1.7e9),
        r.ProxyPorts(ports=(r.ProxyPort(port="ts0", mac="02:00:00:00:00:05", vn="n1", identity="v", password="p"),)),
        r.Servables(vns=(Servable("n1", 5001), Servable("n2", 5002))),
    ]
    for name in ("small.yaml", "vlink_routed.yaml"):  # the second has virtual links: QoS, routes, tunnels
        intent = load_intent(parsed((LAB / name).read_text()))
        eps = declared_endpoints(intent)
        for t in list(compute_tables(intent, eps, allocate([e.key for e in eps], {})).values())[:2]:
            values.append(t)
            values.append(r.TablesHead(host=t.host, underlay_ip=t.underlay_ip, uplink=t.uplink, role=t.role, qos=t.qos,
                                       vns=tuple(r.VnDigest(v.vn, "d1") for v in t.vns), generation=t.generation))
    return tuple((type(v).__name__, v.to_json()) for v in values)


def _mutate(rng: Random, x: tuple[str, bytes], other: tuple[str, bytes]) -> tuple[str, bytes]:
    kind, data = x
    if rng.random() < 0.1:
        kind = rng.choice(list(KINDS))  # one record's value read as another's
    if rng.random() < 0.3:
        return kind, havoc(rng, data, other[1])
    try:
        tree = json.loads(data)
    except ValueError:
        return kind, havoc(rng, data, other[1])
    tree = mutate_tree(rng, tree)
    try:
        return kind, json.dumps(tree, default=str).encode()
    except (TypeError, ValueError):  # a key JSON cannot carry (None, a number): left out
        return kind, json.dumps(tree, default=str, skipkeys=True).encode()


def _read(x: tuple[str, bytes]) -> None:
    kind, data = x
    KINDS[kind].from_json(data)


TARGETS = (Target("records", _seeds(), _mutate, _read, (r.RecordError, TablesError), show=lambda x: x[0].encode() + b" " + x[1]),)
