"""The agent process (the NVE): one per host, inside the host's network namespace.

Level-triggered: a store event or the resync timer only wakes it; every pass takes the whole
desired state (its host's tables, from what the watch carried, else read) and the actual state
(the kernel) and converges; every resync reads and decodes both afresh.
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
import time

from tenet.agent.config import AgentConfig, ConfigError, load_config, with_metrics
from tenet.agent.registration import Registration
from tenet.agent.shard_group import ShardGroup, shard_count
from tenet.agent.desired import desired_state
from tenet.agent.fast_lane import FastLane
from tenet.agent.metrics import AgentMetrics, MeteredKernel
from tenet.exposition import serve_option
from tenet.agent.provisional import PROVISIONAL_TTL, Overlay, merge
from tenet.pace import Pacer
from tenet.agent.kernel.netlink import LinuxKernel, ipv4_address
from tenet.agent.kernel.state import KernelState
from tenet.agent.announce import Announcer, external_macs
from tenet.agent.reconcile import Attach, Kernel, reconcile
from tenet.compute.tables import HostTables
from tenet.store import keys, published
from tenet.store.published import Reader
from tenet.store.records import AgentState, AgentStatus
from tenet.store.base import Event, Store, StoreError, follow
from tenet.store.open import open_store
from tenet.stopping import stop_on_signals
from tenet.trace import trace

log = logging.getLogger("tenet.agent")
PACE = 0.02  # under table churn, at most one reconcile per 20 ms (each applies the latest tables) …
DUTY = 2.0  # … and at most a third of a core: admission (a child process) needs the rest under churn
BURST = 0.1  # quiet time banks up to this much pacing: changes one at a time never wait


def sync(store: Store, kernel: Kernel, reader: Reader, converged: KernelState | None = None,
         events: list[Event] | None = None, overlay: Overlay | None = None, trust: bool = False,
         ) -> tuple[AgentStatus, KernelState | None, list]:
    """One pass: the status to report, the desired state and the ops applied. Without
    published tables the agent touches nothing (never delete blind). `converged`: see
    reconcile(). The reader decodes only the VN tables that changed since its last read,
    from the watch's `events` when they carry them (None: read the store). `overlay`: the
    rows this NVE admitted itself, merged in until the tables settle them (provisional.py)."""
    tables = reader.read(store, events)
    if tables is None:
        return AgentStatus(generation=0, state=AgentState.WAITING_FOR_TABLES), None, []
    provisional = 0
    if overlay is not None:
        overlay.learn(tables)
        for loc in overlay.settle(tables, time.monotonic()):
            log.warning("%s in %s: admitted here, unconfirmed by the controller after %.0f s: withdrawn",
                        loc.endpoint.mac, loc.endpoint.vn, PROVISIONAL_TTL)
        tables, provisional = merge(tables, overlay.local.values(), overlay.hints.values(), overlay.extmacs)
    macs = kernel.port_macs()
    desired = desired_state(tables, frozenset(macs), kernel.uplink_mtu(tables.uplink))
    ops = reconcile(kernel, desired, converged, trust)
    if ops:
        log.info("generation %d%s: applied %d ops", tables.generation,
                 f" + {provisional} provisional" if provisional else "", len(ops))
    state = AgentState.WAITING_FOR_PORTS if desired.missing_ports else AgentState.CONVERGED
    return AgentStatus(generation=tables.generation, state=state, content_hash=tables.content_hash,
                       missing_ports=tuple(sorted(desired.missing_ports)), provisional=provisional), desired, ops


def _needs_admission(store: Store, host: str, radius: str) -> bool:
    """NVO3 admission needs RADIUS; an IP-based VN needs the same process's ARP responder."""
    if radius:
        return True
    tables = published.read(store, host)
    return tables is not None and any(t.forwarding == "ip" for t in tables.vns)


PORT_WAIT = 0.05  # seconds between looks while a VM port is missing
VERIFY = 0.2  # a full read-back this long after the last pass that applied ops


STORE_RETRY = 1.0  # seconds between tries while the store is unreachable


class Agent:
    """What one host's passes share: the tables' reader, the last desired state applied and
    the provisional overlay. Two threads run passes — the store-following loop and the fast
    lane (admissions and peers' hints) — one at a time."""

    def __init__(self, host: str, kernel: Kernel, announcer: Announcer | None = None,
                 metrics: AgentMetrics | None = None) -> None:
        self.host, self.kernel, self.announcer = host, kernel, announcer
        self.metrics = metrics or AgentMetrics()
        self.lock = threading.Lock()
        self.overlay = Overlay()
        # The last desired state applied, and when everything is next read back regardless: a
        # pass in between reads only what its tables changed (a re-rated link: one class dump).
        self.converged: KernelState | None = None
        self.reader = published.Reader(host)
        self.tables: HostTables | None = None  # the published tables of the last pass (the lane reads them)

    def pass_(self, store: Store, events: list[Event] | None, full: bool, fast: bool = False) -> tuple[AgentStatus, list]:
        """One pass under the lock. `full`: read the tables and the kernel back whole. `fast`:
        the fast lane's, which reads nothing back (reconcile's `trust`)."""
        with self.lock, self.metrics.reconcile.time():
            if full or self.converged is None:
                self.reader, events = published.Reader(self.host), None
            try:
                status, self.converged, ops = sync(store, self.kernel, self.reader, None if full else self.converged,
                                                   events, self.overlay, fast)
                self.tables = self.reader.last
                arrived = {op.port for op in ops if isinstance(op, Attach) and op.bridge}
                if arrived and self.announcer is not None and self.tables is not None:
                    self.announcer.announce(external_macs(self.tables, arrived))
            except Exception as e:  # report and retry next pass; the kernel keeps what it has
                if isinstance(e, StoreError):
                    self.converged = None
                    raise
                log.exception("reconcile failed")
                self.metrics.pass_errors.inc()
                status, self.converged, ops = AgentStatus(generation=-1, state=AgentState.ERROR, error=str(e)), None, []
            return status, ops


def run(config: AgentConfig, metrics: AgentMetrics | None = None) -> None:
    """`metrics`: served by the caller (main); the admission shards' join them."""
    host, store_url = config.host, config.store
    store = open_store(store_url)
    metrics = metrics or AgentMetrics()
    kernel = MeteredKernel(LinuxKernel(config.uplink), metrics)
    announcer = Announcer(config.uplink)
    agent = Agent(host, kernel, announcer, metrics)
    admission = ShardGroup(store, host, store_url, config.radius, config.secret_file, config.udp_port,
                           config.tunnel_port, shard_count(config.admission_shards),
                           metrics if config.metrics else None, config.radius_policy, config.accounting)
    registration = Registration(config, lambda: ipv4_address(config.uplink))
    registration.start()
    lane: FastLane | None = None
    if config.fast_lane:
        try:
            lane = FastLane(agent, store_url, config.uplink)
            lane.start()
        except OSError as e:  # e.g. the hint port taken: admissions then wait for the controller
            log.error("fast lane not started, every admission waits for the controller: %s", e)
            lane = None
    stopping = stop_on_signals()
    rev = 0  # 0: not yet read from the store
    last: AgentStatus | None = None
    pacer = Pacer(PACE, DUTY, BURST)
    events: list[Event] | None = None  # what the watch returned since the last pass (None: read the store)
    full_due = last_full = 0.0
    applied = 0  # the generation the kernel last converged to
    away = False
    while not stopping.is_set():
        pacer.pace()
        now = time.monotonic()
        try:
            if not rev:
                rev = store.revision() + 1
            if not admission.procs and _needs_admission(store, host, config.radius):
                admission.ensure()
            full = now >= full_due or agent.converged is None
            trace("pass")
            status, ops = agent.pass_(store, events, full)
            trace("applied", str(len(ops)))
            if full:
                last_full = now
            if full and not ops:
                full_due = now + config.resync  # read back whole and found as desired
            elif ops:  # read everything back once changes pause (a burst is not slowed by it)
                full_due = min(last_full + config.resync, now + VERIFY)
            if agent.tables is not None:
                if status.state is AgentState.CONVERGED:
                    applied = status.generation
                metrics.generations(agent.tables.generation, applied)
            if status != last:
                store.put(keys.status(host), status.to_json())
                last = status
            if away:
                log.info("store reachable again: resynced")
                away = False
            pacer.done()
            # a port the tables name is missing (a VM booting) or a migration's is expected: look
            # again soon rather than at the next resync (the fast lane hears the kernel at once)
            desired = agent.converged
            waiting = status.state is AgentState.WAITING_FOR_PORTS or bool(desired and desired.expected_ports)
            wait = PORT_WAIT if waiting else min(config.resync, max(full_due - time.monotonic(), 0.0))
            rev, events = follow(store, published.prefix(host), rev, timeout=wait)
        except StoreError as e:  # forward with the last tables; resync from scratch on return
            if not away:
                log.warning("store unreachable, forwarding with the last tables: %s", e)
                away = True
            rev, last, events = 0, None, None
            stopping.wait(STORE_RETRY)
    if lane is not None:
        lane.stop()
    registration.stop()
    admission.stop()
    announcer.close()
    kernel.close()
    metrics.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="tenet-agent", description="The NVE agent: one per host (docs/agent.md).")
    p.add_argument("--config", required=True, metavar="FILE", help="the agent's TOML configuration (docs/agent.md)")
    p.add_argument("--metrics", metavar="ADDR:PORT", default=None,
                   help="serve Prometheus metrics at http://ADDR:PORT/metrics (overrides the file's `metrics`)")
    a = p.parse_args(argv)
    try:
        config = load_config(a.config)
        if a.metrics is not None:
            config = with_metrics(config, a.metrics)
    except ConfigError as e:
        p.error(str(e))
    metrics = AgentMetrics()
    serve_option(p, metrics.registry, config.metrics)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s[%(process)d] %(message)s")
    run(config, metrics)


if __name__ == "__main__":
    main()
