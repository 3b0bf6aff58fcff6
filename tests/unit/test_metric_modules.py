"""The metric modules: names, types and labels as rendered; counting at the edges; the
admission shards' metrics merged into the agent's registry through real child processes."""
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tenet.agent.config import ConfigError, parse_config, render, with_metrics
from tenet.agent.kernel.fake import FakeKernel
from tenet.agent.metrics import (
    MULTIPROC_ENV, OP_KINDS, AdmissionMetrics, AgentMetrics, DroppedFrames, MeteredKernel, op_kind,
)
from tenet.agent.proxy_metrics import ProxyMetrics
from tenet.agent.reconcile import AddVxlanFdb, DelLink, SetRuleset
from tenet.controller.metrics import ControllerMetrics
from tenet.exposition import Listen, ListenError, parse_listen
from tenet.agent.kernel.state import VxlanFdb
from tenet.store.records import TablesHead
from tenet.wire import eap

SRC = str(Path(__file__).parents[2] / "src")


def families(registry) -> dict:
    """name -> (type, label names of its samples, {sample name+labels: value})"""
    out = {}
    for f in text_string_to_metric_families(generate_latest(registry).decode()):
        labels = {k for s in f.samples for k in s.labels if k != "le"}
        values = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in f.samples}
        out[f.name] = (f.type, labels, values)
    return out


def value(registry, sample: str, **labels) -> float:
    for f in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in f.samples:
            if s.name == sample and s.labels == {k: str(v) for k, v in labels.items()}:
                return s.value
    return 0.0


def no_table(family, table):
    return None


def test_controller_metrics_names_types_labels():
    m = ControllerMetrics()
    fams = families(m.registry)
    assert fams["tenet_controller_compute_duration_seconds"][0] == "histogram"
    assert fams["tenet_controller_tables_published"][0] == "counter"
    assert fams["tenet_controller_compute_failures"][0] == "counter"
    assert fams["tenet_controller_leader"][0] == "gauge"
    m.pass_done(0.003, {"h1": TablesHead(host="h1", underlay_ip="198.18.0.1", uplink="up0", generation=7),
                        "h2": TablesHead(host="h2", underlay_ip="198.18.0.2", uplink="up0", generation=3)})
    m.pass_done(0.001, {})
    fams = families(m.registry)
    assert fams["tenet_controller_host_generation"][:2] == ("gauge", {"host"})
    assert value(m.registry, "tenet_controller_host_generation", host="h1") == 7
    assert value(m.registry, "tenet_controller_tables_published_total") == 2
    assert value(m.registry, "tenet_controller_compute_duration_seconds_count") == 2
    assert ControllerMetrics().registry is not m.registry  # no global default: build as many as we like


def test_agent_metrics_and_the_metered_kernel():
    m = AgentMetrics(read=no_table)
    fams = families(m.registry)
    assert fams["tenet_agent_reconcile_duration_seconds"][0] == "histogram"
    assert fams["tenet_agent_ops_applied"][:2] == ("counter", {"kind"})
    assert fams["tenet_agent_kernel_errors"][0] == "counter"
    for name in ("tenet_agent_generation_lag", "tenet_agent_desired_generation", "tenet_agent_applied_generation"):
        assert fams[name][0] == "gauge"
    assert fams["tenet_agent_dropped_frames"][0] == "counter"
    assert {"add_link", "add_vxlan_fdb", "set_ruleset", "del_address"} <= set(OP_KINDS)
    assert op_kind(DelLink("x")) == "del_link"

    class Refusing(FakeKernel):
        def apply(self, op):
            if isinstance(op, DelLink):
                raise OSError("no such device")
            super().apply(op)

    k = MeteredKernel(Refusing(), m)
    k.apply(AddVxlanFdb(VxlanFdb("vx1", "00:00:00:00:00:00", "198.18.0.2")))
    k.apply(SetRuleset(""))
    with pytest.raises(OSError):
        k.apply(DelLink("gone"))
    assert value(m.registry, "tenet_agent_ops_applied_total", kind="add_vxlan_fdb") == 1
    assert value(m.registry, "tenet_agent_ops_applied_total", kind="set_ruleset") == 1
    assert value(m.registry, "tenet_agent_ops_applied_total", kind="del_link") == 0
    assert value(m.registry, "tenet_agent_kernel_errors_total", kind="del_link") == 1
    m.generations(desired=9, applied=7)
    assert value(m.registry, "tenet_agent_generation_lag") == 2
    m.generations(desired=9, applied=9)
    assert value(m.registry, "tenet_agent_generation_lag") == 0


GATE = """table netdev tenet {{
\tcomment "{digest}"
\tchain gate {{
\t\ttype filter hook ingress devices = {{ "tpa", "tpb" }} priority -200; policy accept;
\t\tether type {{ 0x88b5, 0x88b6 }} accept
\t\tcounter packets {gate} bytes 999 drop
\t}}
\tchain control {{
\t\ttype filter hook ingress devices = {{ "tpa" }} priority -300; policy accept;
\t\tether type {{ 0x88b5, 0x88b6 }} counter packets {control} bytes 1 drop
\t}}
}}
"""


def test_dropped_frames_stay_monotonic_across_table_swaps():
    listing = {"text": None}
    d = DroppedFrames("tenet_test_dropped_frames", "test", "netdev", "tenet", lambda f, t: listing["text"])
    m = AgentMetrics(read=no_table)
    m.registry.register(d)

    def total(chain):
        return value(m.registry, "tenet_test_dropped_frames_total", chain=chain)

    assert total("gate") == 0  # no table: nothing counted
    listing["text"] = GATE.format(digest="aaaa", gate=3, control=1)
    assert (total("gate"), total("control")) == (3, 1)
    listing["text"] = GATE.format(digest="aaaa", gate=5, control=1)
    assert total("gate") == 5  # the same table: what was counted since
    listing["text"] = GATE.format(digest="bbbb", gate=2, control=0)
    assert total("gate") == 7  # swapped: its counters started from zero, ours go on
    listing["text"] = GATE.format(digest="bbbb", gate=1, control=0)
    assert total("gate") == 8  # a counter that went down: swapped too


def test_admission_metrics_names_types_labels():
    a = AdmissionMetrics()
    a.admissions.labels("success", "md5").inc()
    a.dot1x.labels("failure", "mab").inc()
    a.dynauth.labels("disconnect", "ack").inc()
    a.detaches.labels("keepalive_timeout").inc()
    a.revocations.labels("ended").inc()
    fams = families(a.registry)
    assert fams["tenet_nve_admissions"][:2] == ("counter", {"result", "method"})
    assert fams["tenet_nve_radius_round_trip_seconds"][0] == "histogram"
    assert fams["tenet_nve_sessions"][:2] == ("gauge", {"kind"})
    assert fams["tenet_nve_hellos_missed"][0] == "counter"
    assert fams["tenet_nve_detaches"][:2] == ("counter", {"reason"})
    assert fams["tenet_nve_revocations"][:2] == ("counter", {"result"})
    assert fams["tenet_dot1x_authorizations"][:2] == ("counter", {"result", "method"})
    assert fams["tenet_dot1x_logoffs"][0] == "counter"
    assert fams["tenet_dot1x_exchanges"][:2] == ("gauge", set())
    assert fams["tenet_dot1x_dynauth_requests"][:2] == ("counter", {"kind", "result"})
    assert fams["tenet_nve_radius_timeouts"][0] == "counter"
    a.radius_dropped.labels("198.18.0.5:1812", "no_message_authenticator").inc()
    a.radius_deaths.labels("198.18.0.5:1812").inc()
    a.radius_failovers.labels("198.18.0.5:1812").inc()
    a.radius_up.labels("198.18.0.5:1812").set(1)
    fams = families(a.registry)
    assert fams["tenet_nve_radius_dropped_replies"][:2] == ("counter", {"server", "reason"})
    assert fams["tenet_nve_radius_server_deaths"][:2] == ("counter", {"server"})
    assert fams["tenet_nve_radius_failovers"][:2] == ("counter", {"server"})
    assert fams["tenet_nve_radius_server_up"][:2] == ("gauge", {"server"})


def test_proxy_metrics_names_types_labels():
    p = ProxyMetrics(read=no_table)
    fams = families(p.registry)
    assert fams["tenet_proxy_eapol_starts"][0] == "counter"
    assert fams["tenet_proxy_logoffs"][0] == "counter"
    assert fams["tenet_proxy_authorizations"][:2] == ("counter", {"result"})
    assert fams["tenet_proxy_authorized_vms"][0] == "gauge"
    assert fams["tenet_proxy_dropped_frames"][0] == "counter"


SHARD = textwrap.dedent("""
    import sys
    from tenet.agent.metrics import AdmissionMetrics
    a = AdmissionMetrics()
    a.admissions.labels("success", "md5").inc(int(sys.argv[1]))
    a.radius.observe(0.002)
    a.sessions.labels("nvo3").set(int(sys.argv[1]))
""")


def shard(n: int, directory: str) -> None:
    p = subprocess.run([sys.executable, "-c", SHARD, str(n)], env={"PYTHONPATH": SRC, MULTIPROC_ENV: directory},
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr


def test_shards_metrics_merge_into_the_agents_registry_and_outlive_a_shard():
    """Two real child processes write through the multiprocess files; the agent's registry sums
    their counters and histograms with its own metrics; a dead shard's live gauge goes."""
    m = AgentMetrics(read=no_table)
    directory = m.share_with_shards()
    try:
        pids = []
        for n in (2, 3):
            before = set(Path(directory).iterdir())
            shard(n, directory)
            new = {p.name for p in set(Path(directory).iterdir()) - before}
            pids.append(next(int(name.rsplit("_", 1)[1].removesuffix(".db")) for name in new if name.startswith("counter_")))
        assert value(m.registry, "tenet_nve_admissions_total", result="success", method="md5") == 5
        assert value(m.registry, "tenet_nve_radius_round_trip_seconds_count") == 2
        assert value(m.registry, "tenet_nve_sessions", kind="nvo3") == 5
        assert families(m.registry)["tenet_agent_reconcile_duration_seconds"][0] == "histogram"  # its own beside
        m.shard_gone(pids[0])
        assert value(m.registry, "tenet_nve_sessions", kind="nvo3") == 3  # the dead shard's sessions went with it
        assert value(m.registry, "tenet_nve_admissions_total", result="success", method="md5") == 5  # its counts stay
    finally:
        m.close()
    assert not Path(directory).exists()


def test_listen_addresses():
    assert parse_listen("127.0.0.1:9108") == Listen("127.0.0.1", 9108)
    assert parse_listen("[::1]:9108").url == "http://[::1]:9108/metrics"
    for bad, why in (("9108", "expected ADDR:PORT"), ("localhost:9108", "not an IP address"),
                     ("127.0.0.1:0", "not 1..65535"), ("127.0.0.1:http", "not 1..65535")):
        with pytest.raises(ListenError, match=why):
            parse_listen(bad)


BASE = 'host = "h1"\nstore = "sqlite:///x.db"\nuplink = "up0"\nnetwork = "pn1"\n'


def test_agent_config_metrics_key_and_flag_agree():
    c = parse_config(tomllib.loads(BASE + 'metrics = "127.0.0.1:9108"\n'))
    assert c.metrics == "127.0.0.1:9108"
    assert parse_config(tomllib.loads(render(c))) == c
    assert parse_config(tomllib.loads(BASE)).metrics == ""  # not served unless asked
    assert with_metrics(c, "127.0.0.1:9200").metrics == "127.0.0.1:9200"
    with pytest.raises(ConfigError, match="metrics: .*not an IP address"):
        parse_config(tomllib.loads(BASE + 'metrics = "anywhere:1"\n'))
    with pytest.raises(ConfigError, match="--metrics"):
        with_metrics(c, "nowhere")


def test_eap_method_names():
    assert eap.method_of(eap.encode(eap.md5_response(3, b"pw", b"0123456789abcdef"))) == "md5"
    assert eap.method_of(eap.encode(eap.identity_response(1, "alice"))) is None
    assert eap.method_of(eap.encode(eap.nak(2))) is None
    assert eap.method_of(bytes([2, 1, 0, 6, 25, 0])) == "peap"
    assert eap.method_of(bytes([2, 1, 0, 5, 99])) == "type-99"
    assert eap.method_of(bytes([1, 1, 0, 5, 4])) is None  # a Request: the server's offer, not the TES's method
    assert eap.method_of(None) is None


def test_docs_list_every_metric():
    doc = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text()
    registries = [ControllerMetrics().registry, AgentMetrics(read=no_table).registry, AdmissionMetrics().registry,
                  ProxyMetrics(read=no_table).registry]
    names = {f.name + ("_total" if f.type == "counter" else "")
             for r in registries for f in text_string_to_metric_families(generate_latest(r).decode())
             if f.name.startswith("tenet_") and not f.name.endswith("_created")}
    assert len(names) >= 28
    assert {n for n in names if f"`{n}`" not in doc} == set()
