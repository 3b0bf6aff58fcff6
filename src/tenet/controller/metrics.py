"""The controller's Prometheus metrics (docs/metrics.md), in a registry of its own.

Counted where the events happen — the leader's loop in main.py — never inside the pure
compute it times.
"""
from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from tenet.store.records import TablesHead

# a pass is milliseconds for small fabrics and seconds for very large ones
COMPUTE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.compute = Histogram("tenet_controller_compute_duration_seconds",
                                 "Time of one leader pass: recompute from the inputs and write what changed.",
                                 buckets=COMPUTE_BUCKETS, registry=r)
        self.compute_failures = Counter("tenet_controller_compute_failures_total",
                                        "Passes that failed (a bad intent): the published tables stay.", registry=r)
        self.published = Counter("tenet_controller_tables_published_total",
                                 "Host tables written (one per host whose tables changed in a pass).", registry=r)
        self.generation = Gauge("tenet_controller_host_generation",
                                "The generation of the tables last published for each host.", ["host"], registry=r)
        self.leader = Gauge("tenet_controller_leader", "1 while this replica leads, else 0.", registry=r)
        ProcessCollector(registry=r)  # process_*: CPU seconds, resident memory, open fds

    def pass_done(self, seconds: float, written: Mapping[str, TablesHead]) -> None:
        self.compute.observe(seconds)
        self.published.inc(len(written))
        for host, head in written.items():
            self.generation.labels(host).set(head.generation)
