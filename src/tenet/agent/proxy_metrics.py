"""The 802.1X proxy's Prometheus metrics (tenet-proxy, its own process; docs/metrics.md).

Counted in proxy_main.py from the frames the pure Proxy emits and the states it reaches,
never inside it.
"""
from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from tenet.agent.kernel import nftables
from tenet.agent.metrics import DroppedFrames


class ProxyMetrics:
    def __init__(self, registry: CollectorRegistry | None = None,
                 read: Callable[[str, str], str | None] = nftables.list_table) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.starts = Counter("tenet_proxy_eapol_starts_total", "EAPOL-Starts sent on behalf of VMs.", registry=r)
        self.logoffs = Counter("tenet_proxy_logoffs_total",
                               "EAPOL-Logoffs sent on behalf of VMs that went (removed, migrated away).", registry=r)
        self.authorizations = Counter("tenet_proxy_authorizations_total",
                                      "VMs' authentications the switch decided, by result (success, failure).",
                                      ["result"], registry=r)
        self.authorized = Gauge("tenet_proxy_authorized_vms", "VMs the switch has authorized now.", registry=r)
        self.guard = DroppedFrames("tenet_proxy_dropped_frames",
                                   "Frames the host's guard dropped, by chain (vm_sources: a forged source MAC; "
                                   "vm_vns: between VM ports of different VNs).", "bridge", "tenet_proxy", read)
        r.register(self.guard)
        ProcessCollector(registry=r)  # process_*: CPU seconds, resident memory, open fds
        for result in ("success", "failure"):
            self.authorizations.labels(result)
