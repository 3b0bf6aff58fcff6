"""Documents: the topology an operator (or a tenant, through `tenet apply`) hands the loader,
the agent's config file, and the records agents and controllers read back from the store.
Mutated as text (lines, YAML/TOML tokens, bytes) and as parsed trees (wrong types, missing
keys, huge numbers, odd strings, duplicates). Each promises its own error type, naming the cause."""
from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from random import Random
from typing import Any

from fuzzing.mutate import havoc, mutate_text, mutate_tree
from fuzzing.run import Target
from tenet.agent.config import AgentConfig, ConfigError, config_of, render
from tenet.aaa.provisioning import Provisioning
from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints
from tenet.compute.extmac import allocate
from tenet.compute.tables import TablesError
from tenet.model.errors import IntentError
from tenet.model.load import load_intent, parse_document
from tenet.store import records as r

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "tests" / "lab"


def _show(x: Any) -> bytes:
    return x.encode(errors="backslashreplace") if isinstance(x, str) else repr(x).encode()


def _mutate_doc(parse: Any):
    """Text mutations of text; tree mutations of trees, or of a text's parse."""
    def mutate(rng: Random, x: Any, other: Any) -> Any:
        if isinstance(x, str) and rng.random() < 0.4:
            return mutate_text(rng, x, other if isinstance(other, str) else "")
        tree = parse(x) if isinstance(x, str) else x
        try:
            return mutate_tree(rng, tree)
        except RecursionError:  # a deeply nested input: mutate its text instead
            return mutate_text(rng, x, "") if isinstance(x, str) else tree
    return mutate


# -- topology ---------------------------------------------------------------------------------
@cache
def _parsed(text: str) -> Any:
    try:
        return parse_document(text)
    except IntentError:
        return {}


def _topology_seeds() -> tuple[str, ...]:
    return tuple(p.read_text() for p in sorted(LAB.glob("*.yaml")))


def _load(x: Any) -> None:
    doc = parse_document(x, "fuzz.yaml") if isinstance(x, str) else x
    load_intent(doc, "fuzz.yaml")


def _topology_mutate(rng: Random, x: Any, other: Any) -> Any:
    """Trees mostly: the pure-Python YAML parser costs ten times the loader (docs/benchmarks.md)."""
    if isinstance(x, str) and rng.random() < 0.75:
        return _mutate_doc(_parsed)(rng, _parsed(x) if x in _SEEDS else x, other)
    return _mutate_doc(_parsed)(rng, x, other)


_SEEDS = frozenset(_topology_seeds())


# -- agent config -----------------------------------------------------------------------------
def _config_seeds() -> tuple[str, ...]:
    base = AgentConfig(host="h1", store="etcd://198.18.0.2:2379,198.18.0.3:2379?cacert=/etc/tenet/ca.pem", uplink="eth1",
                       network="pn1")
    from dataclasses import replace
    from tenet.store.records import HostRole
    return (render(base), render(replace(base, role=HostRole.ACCESS_SWITCH, authenticator=True, mab=True, radius="198.18.0.9:1812",
                                         secret_file="/etc/tenet/radius.secret", metrics="127.0.0.1:9108", resync=0.5)),
            render(replace(base, store="sqlite:///var/lib/tenet/store.db", udp_port=0, admission_shards=4, fast_lane=False)))


def _config_parse(text: str) -> Any:
    import tomllib
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return {}


def _toml(tree: Any) -> str:
    """A tree back to TOML text, as far as TOML can say it (what it cannot is skipped)."""
    lines, tables = [], []
    for k, v in (tree.items() if isinstance(tree, dict) else []):
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"{json.dumps(str(k))} = {_toml_value(v)}")
    for name, t in tables:
        lines += ["", f"[{json.dumps(str(name))}]"] + [f"{json.dumps(str(k))} = {_toml_value(v)}" for k, v in t.items()]
    return "\n".join(lines) + "\n"


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(v, "nan" if v != v else repr(v))
    if isinstance(v, (list, tuple, set)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    if v is None:
        return '""'
    return json.dumps(str(v))


def _config_mutate(rng: Random, x: str, other: str) -> str:
    if rng.random() < 0.5:
        return mutate_text(rng, x, other)
    return _toml(mutate_tree(rng, _config_parse(x)))


def _config(x: str) -> None:
    config_of(x, "agent.toml")


# -- store records ----------------------------------------------------------------------------
@cache
def _record_seeds() -> tuple[tuple[str, bytes], ...]:
    nvo3 = r.EndpointReport(vn="n1", vnid=5001, mac="02:00:00:00:00:01", port="udp:198.18.9.2:68", host="h1",
                            session=0x1234, identity="alice", ip="10.1.0.9/24",
                            provisioning=Provisioning(vn="n1", rate_down_bps=10_000_000, cos=3),
                            channel="udp:198.18.9.2:68", tunnel=r.ReportedTunnel("198.18.9.2", 70001, 4790))
    values: list[Any] = [
        r.AgentStatus(generation=7, state=r.AgentState.WAITING_FOR_PORTS, content_hash="ab", missing_ports=("tv1",)),
        r.AdmissionReady(pid=4242, serves=("n1", "n2"), shard=1, shards=3), r.Revocation("over quota"), nvo3,
        r.EndpointReport(vn="n2", vnid=2, mac="02:00:00:00:00:02", port="ts01", host="tor1", kind=r.EndpointKind.DOT1X),
        r.ExtMac("02:aa:00:00:00:01"), r.Leader(name="ctl-a:4242", pid=4242, since=1.7e9), r.Observed(revision=917, leader="a"),
        r.Chassis(host="h1", network="pn1", address="198.18.1.10/24", uplink="eth1"), r.Alive(pid=1, since=1.7e9),
        r.ProxyPorts(ports=(r.ProxyPort(port="ts0", mac="02:00:00:00:00:05", vn="n1", identity="v", password="p"),)),
    ]
    intent = load_intent(_parsed((LAB / "small.yaml").read_text()))
    eps = declared_endpoints(intent)
    tables = compute_tables(intent, eps, allocate([e.key for e in eps], {}))
    values += list(tables.values())[:2]
    try:
        from tenet.store.records import TablesHead, Servables  # noqa: F401
        head = r.TablesHead.from_json(json.dumps({"host": "h1", "underlay_ip": "198.18.1.10", "uplink": "eth1", "vns": [["v1", "abc"]],
                                                  "generation": 3}))
        values.append(head)
    except r.RecordError:
        pass
    return tuple((type(v).__name__, v.to_json()) for v in values)


KINDS = {"AgentStatus": r.AgentStatus, "AdmissionReady": r.AdmissionReady, "Revocation": r.Revocation,
         "EndpointReport": r.EndpointReport, "ExtMac": r.ExtMac, "Leader": r.Leader, "Observed": r.Observed,
         "Chassis": r.Chassis, "Alive": r.Alive, "ProxyPorts": r.ProxyPorts, "HostTables": r.HostTables,
         "TablesHead": r.TablesHead, "Servables": r.Servables}


def _record_mutate(rng: Random, x: tuple[str, bytes], other: tuple[str, bytes]) -> tuple[str, bytes]:
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
    except (TypeError, ValueError):  # a non-string key JSON cannot carry
        return kind, json.dumps(tree, default=str, skipkeys=True).encode()


def _record(x: tuple[str, bytes]) -> str:
    kind, data = x
    KINDS[kind].from_json(data)
    return "ok"


TARGETS = (
    Target("topology", _topology_seeds(), _topology_mutate, _load, (IntentError,), show=_show),
    Target("config", _config_seeds(), _config_mutate, _config, (ConfigError,), show=_show),
    Target("records", _record_seeds(), _record_mutate, _record, (r.RecordError, TablesError),
           show=lambda x: x[0].encode() + b" " + x[1]),
)
