"""The agent's Prometheus metrics (docs/metrics.md): the reconciler's, in the agent process,
and admission's, in its shard processes (agent/admit.py).

One URL per agent, whatever its shard count: the shards write their metrics to memory-mapped
files in a directory the agent makes for them (prometheus_client's multiprocess mode; the
agent sets PROMETHEUS_MULTIPROC_DIR in their environment only), and the agent's /metrics
merges those with its own. Chosen over a port per shard because the shards live and die
together (shard_group.py): a port per shard would reset every admission counter on each
restart of the group and make scrapers follow a changing list of targets, while the files of
a dead shard keep its counts (summed into the agent's totals) and only its live gauges are
dropped (mark_process_dead). The directory lives and dies with the agent.

Metric objects are built into a registry of their own (never the global default), and are
counted at the edges — the agent's pass, the kernel driver's calls, admission's I/O loop —
from the actions the pure state machines return, never inside them.
"""
from __future__ import annotations

import functools
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from tenet.agent import port_security, reconcile
from tenet.agent.kernel import nftables
from tenet.agent.translation import TABLE

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
RECONCILE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
RADIUS_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


def op_kind(op: object) -> str:
    """AddVxlanFdb(...) -> add_vxlan_fdb: the `kind` label of an op (once per op type: every
    op a pass applies is counted)."""
    return _snake(type(op).__name__)


@functools.cache
def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))


OP_KINDS = tuple(_snake(t.__name__) for t in reconcile.Op.__args__)  # type: ignore[attr-defined]


class DroppedFrames(Collector):
    """Frames dropped by one nftables table's `counter … drop` rules, per chain, read at scrape
    time. The agent swaps its table whole when its tables change, which starts the kernel's
    counters from zero; a counter must not go down, so each scrape adds what was counted since
    the last one, or everything counted when the table was swapped in between (its rules
    changed, or a counter went down). Drops between the last scrape and a swap are missed:
    the totals are a lower bound, exact while the table stays."""

    def __init__(self, name: str, documentation: str, family: str, table: str,
                 read: Callable[[str, str], str | None] = nftables.list_table) -> None:
        self.name, self.documentation, self.family, self.table, self.read = name, documentation, family, table, read
        self.lock = threading.Lock()
        self.totals: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.shape = ""

    def update(self, listing: str | None) -> None:
        counts = by_kind(nftables.dropped(listing)) if listing else {}
        shape = nftables.shape(listing) if listing else ""
        with self.lock:
            swapped = shape != self.shape
            for chain, n in counts.items():
                last = 0 if swapped else self.last.get(chain, 0)
                self.totals[chain] = self.totals.get(chain, 0) + (n - last if n >= last else n)
            self.last, self.shape = counts, shape

    def collect(self) -> Iterator[CounterMetricFamily]:
        self.update(self.read(self.family, self.table))
        family = CounterMetricFamily(self.name, self.documentation, labels=["chain"])
        with self.lock:
            for chain, n in sorted(self.totals.items()):
                family.add_metric([chain], n)
        yield family

    def describe(self) -> Iterator[CounterMetricFamily]:  # registration must not run nft
        yield CounterMetricFamily(self.name, self.documentation, labels=["chain"])


def by_kind(counts: dict[str, int]) -> dict[str, int]:
    """Drops per chain, a NIC's port-security chain counted as `port_security`: one label
    per kind of drop, not one per NIC that ever was (the agent's log and `nft list` name it)."""
    out: dict[str, int] = {}
    for chain, n in counts.items():
        kind = port_security.CHAIN if chain.startswith(port_security.PREFIX) else chain
        out[kind] = out.get(kind, 0) + n
    return out


class AgentMetrics:
    """The agent process's own: reconcile passes, kernel ops and errors, generations, drops."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 read: Callable[[str, str], str | None] = nftables.list_table) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.reconcile = Histogram("tenet_agent_reconcile_duration_seconds",
                                   "Time of one reconcile pass: read the tables, observe the kernel, apply the ops.",
                                   buckets=RECONCILE_BUCKETS, registry=r)
        self.ops = Counter("tenet_agent_ops_applied_total", "Kernel ops applied, by kind.", ["kind"], registry=r)
        self.kernel_errors = Counter("tenet_agent_kernel_errors_total",
                                     "Kernel calls that failed, by op kind (observe: reading the kernel back).",
                                     ["kind"], registry=r)
        self.pass_errors = Counter("tenet_agent_reconcile_errors_total",
                                   "Passes that failed (the kernel keeps what it has; the next pass retries).", registry=r)
        self.desired = Gauge("tenet_agent_desired_generation", "Generation of the host's tables last read.", registry=r)
        self.applied = Gauge("tenet_agent_applied_generation",
                             "Generation of the tables the kernel last fully converged to.", registry=r)
        self.lag = Gauge("tenet_agent_generation_lag",
                         "Desired minus applied generation: 0 once the kernel holds the tables read.", registry=r)
        for kind in OP_KINDS:
            self.ops.labels(kind)
        self.gate = DroppedFrames("tenet_agent_dropped_frames",
                                  "Frames dropped by the agent's nftables rules, by chain (gate: ports not admitted; "
                                  "control: NVO3 frames kept from the bridge; underlay_unknown, underlay_foreign, "
                                  "underlay_tunnels: VXLAN from outside a VN's peers; underlay_flooded: "
                                  "other hosts' BUM; port_security: a NIC sending from a MAC or address not its own).",
                                  "netdev", TABLE, read)
        r.register(self.gate)
        ProcessCollector(registry=r)  # process_*: CPU seconds, resident memory, open fds
        self.shard_dir = ""

    def generations(self, desired: int, applied: int) -> None:
        self.desired.set(desired)
        self.applied.set(applied)
        self.lag.set(max(0, desired - applied))

    def share_with_shards(self) -> str:
        """A fresh directory for the admission shards' metrics, merged into this registry."""
        if not self.shard_dir:
            self.shard_dir = tempfile.mkdtemp(prefix="tenet-metrics-")
            self.registry.register(MultiProcessCollector(None, path=self.shard_dir))
        return self.shard_dir

    def shard_gone(self, pid: int) -> None:
        """A shard exited: its counts stay in the totals, its live gauges go."""
        if self.shard_dir:
            mark_process_dead(pid, self.shard_dir)

    def close(self) -> None:
        if self.shard_dir:
            shutil.rmtree(self.shard_dir, ignore_errors=True)


class AdmissionMetrics:
    """An admission shard's (agent/discovery.py, agent/admit.py): NVO3 and 802.1X."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.admissions = Counter("tenet_nve_admissions_total",
                                  "NVO3 authentications decided (AUTH_RESULT sent), by result (success, failure, "
                                  "error: RADIUS unavailable) and EAP method.", ["result", "method"], registry=r)
        self.radius = Histogram("tenet_nve_radius_round_trip_seconds",
                                "From an Access-Request submitted to its verdict or challenge (NVO3 and 802.1X).",
                                buckets=RADIUS_BUCKETS, registry=r)
        self.radius_timeouts = Counter("tenet_nve_radius_timeouts_total",
                                       "RADIUS exchanges given up after every retry.", registry=r)
        self.radius_dropped = Counter("tenet_nve_radius_dropped_replies_total",
                                      "Datagrams from a RADIUS server not taken as replies, by server and reason "
                                      "(malformed, bad_authenticator, no_message_authenticator, "
                                      "bad_message_authenticator, unexpected_proxy_state, unmatched).",
                                      ["server", "reason"], registry=r)
        self.radius_deaths = Counter("tenet_nve_radius_server_deaths_total",
                                     "Times a RADIUS server was declared dead (an exchange timed out on it).",
                                     ["server"], registry=r)
        self.radius_failovers = Counter("tenet_nve_radius_failovers_total",
                                        "Exchanges moved to the next RADIUS server after this one timed out.",
                                        ["server"], registry=r)
        self.radius_up = Gauge("tenet_nve_radius_server_up", "1 while a RADIUS server is in use, 0 while it is "
                               "dead (skipped); the lowest over the admission shards.", ["server"], registry=r,
                               multiprocess_mode="livemin")
        self.sessions = Gauge("tenet_nve_sessions", "Sessions now active, by kind (nvo3: attached TESs; "
                              "dot1x: authorized MACs on switch ports).", ["kind"], registry=r,
                              multiprocess_mode="livesum")
        self.hellos_missed = Counter("tenet_nve_hellos_missed_total",
                                     "NVO3 sessions ended because the TES missed its hellos.", registry=r)
        self.detaches = Counter("tenet_nve_detaches_total", "NVO3 sessions ended, by reason.", ["reason"], registry=r)
        self.revocations = Counter("tenet_nve_revocations_total",
                                   "Operator revocations (tenet detach) handled, by result (ended, no_session).",
                                   ["result"], registry=r)
        self.dot1x = Counter("tenet_dot1x_authorizations_total",
                             "802.1X authentications decided on switch ports, by result (success, failure, error) "
                             "and method (an EAP method, or mab).", ["result", "method"], registry=r)
        self.logoffs = Counter("tenet_dot1x_logoffs_total", "EAPOL-Logoffs that ended an authorization.", registry=r)
        self.exchanges = Gauge("tenet_dot1x_exchanges", "802.1X exchanges under way on switch ports: MACs connecting "
                               "or authenticating, neither authorized nor refused yet (one whose supplicant stopped "
                               "answering stays until the authenticator gives it up).", registry=r,
                               multiprocess_mode="livesum")
        self.dynauth = Counter("tenet_dot1x_dynauth_requests_total",
                               "RFC 5176 requests from RADIUS, by kind (disconnect, coa) and result (ack: a session "
                               "matched; nak: none did; refused: not from our server or not authentic).",
                               ["kind", "result"], registry=r)
        self.accounting = Counter("tenet_nve_accounting_requests_total",
                                  "RADIUS Accounting-Requests, by Acct-Status-Type (start, interim_update, stop) and "
                                  "result (sent: first transmitted; acknowledged: an authentic Accounting-Response "
                                  "came; dropped: given up, the queue full or no server answering).",
                                  ["status", "result"], registry=r)
        self.accounting_retransmissions = Counter("tenet_nve_accounting_retransmissions_total",
                                                  "Accounting-Requests sent again (a new Acct-Delay-Time and "
                                                  "Identifier), to the same or the next server.", registry=r)
        self.accounting_rtt = Histogram("tenet_nve_accounting_round_trip_seconds",
                                        "From an Accounting-Request's transmission to its Accounting-Response.",
                                        buckets=RADIUS_BUCKETS, registry=r)
        self.accounting_queue = Gauge("tenet_nve_accounting_queue", "Accounting-Requests waiting or in flight.",
                                      registry=r, multiprocess_mode="livesum")
        self.accounting_errors = Counter("tenet_nve_accounting_counter_errors_total",
                                         "Changes to or reads of the per-session counters' nftables table that "
                                         "failed (the table is then read back whole and reconciled).", registry=r)
        self.eap_retransmissions = Counter("tenet_nve_eap_retransmissions_total",
                                           "EAP-Requests sent again to a supplicant (dot1x) or TES (nvo3) that did "
                                           "not answer within the retransmission timeout.", ["kind"], registry=r)
        self.eap_timeouts = Counter("tenet_nve_eap_timeouts_total",
                                    "EAP exchanges timed out, by kind and side: supplicant (no answer after maxReq "
                                    "retransmissions: the attempt ended), server (RADIUS failed or was silent for "
                                    "serverTimeout mid-exchange: restarted, given up, or an authorization kept).",
                                    ["kind", "side"], registry=r)
        self.eap_restarts = Counter("tenet_nve_eap_restarts_total",
                                    "EAP exchanges started again with a fresh Request-Identity after a server "
                                    "failure mid-exchange.", ["kind"], registry=r)
        self.eap_dropped = Counter("tenet_nve_eap_responses_dropped_total",
                                   "EAP-Responses not relayed, by kind and why: duplicate (the same Response awaits "
                                   "RADIUS's answer), stale (it answers no request in flight).", ["kind", "why"],
                                   registry=r)
        for kind in ("nvo3", "dot1x"):
            self.sessions.labels(kind).set(0)
            self.eap_retransmissions.labels(kind)
            self.eap_restarts.labels(kind)
            for side in ("supplicant", "server"):
                self.eap_timeouts.labels(kind, side)
            for why in ("duplicate", "stale"):
                self.eap_dropped.labels(kind, why)
        self.exchanges.set(0)
        for status in ("start", "interim_update", "stop"):
            for result in ("sent", "acknowledged", "dropped"):
                self.accounting.labels(status, result)


class MeteredKernel:
    """A Kernel (reconcile.Kernel) that counts what passes through it: the ops applied, by
    kind, and the calls that failed — at the driver's edge, so an op applied before another
    failed in the same pass is counted too."""

    def __init__(self, kernel, metrics: AgentMetrics) -> None:
        self.kernel, self.metrics = kernel, metrics

    def ports(self) -> frozenset[str]:
        return self.kernel.ports()

    def port_macs(self) -> dict[str, str]:
        return self.kernel.port_macs()

    def uplink_mtu(self, uplink: str) -> int:
        return self.kernel.uplink_mtu(uplink)

    def observe(self, sections: frozenset[str] | None = None):
        try:
            return self.kernel.observe(sections)
        except Exception:
            self.metrics.kernel_errors.labels("observe").inc()
            raise

    def apply(self, op: reconcile.Op) -> None:
        kind = op_kind(op)
        try:
            self.kernel.apply(op)
        except Exception:
            self.metrics.kernel_errors.labels(kind).inc()
            raise
        self.metrics.ops.labels(kind).inc()

    def close(self) -> None:
        self.kernel.close()
