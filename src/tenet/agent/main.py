"""The agent process (the NVE): one per host, inside the host's network namespace.

Level-triggered: a store event or the resync timer only wakes it; every pass takes the whole
desired state (its host's tables, from what the watch carried, else read) and the actual state
(the kernel) and converges; every resync reads and decodes both afresh.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from tenet.agent.config import AgentConfig, ConfigError, load_config
from tenet.agent.registration import Registration
from tenet.agent.shard_group import ShardGroup, shard_count
from tenet.agent.desired import desired_state
from tenet.pace import Pacer
from tenet.agent.kernel.netlink import LinuxKernel, ipv4_address
from tenet.agent.kernel.state import KernelState
from tenet.agent.reconcile import Kernel, reconcile
from tenet.store import keys, published
from tenet.store.published import Reader
from tenet.store.records import AgentState, AgentStatus
from tenet.store.base import Event, Store, StoreError, follow
from tenet.store.open import open_store
from tenet.stopping import stop_on_signals

log = logging.getLogger("tenet.agent")
PACE = 0.02  # under table churn, at most one reconcile per 20 ms (each applies the latest tables) …
DUTY = 2.0  # … and at most a third of a core: admission (a child process) needs the rest under churn
BURST = 0.1  # quiet time banks up to this much pacing: changes one at a time never wait


def sync(store: Store, kernel: Kernel, reader: Reader, converged: KernelState | None = None,
         events: list[Event] | None = None) -> tuple[AgentStatus, KernelState | None, list]:
    """One pass: the status to report, the desired state and the ops applied. Without
    published tables the agent touches nothing (never delete blind). `converged`: see
    reconcile(). The reader decodes only the VN tables that changed since its last read,
    from the watch's `events` when they carry them (None: read the store)."""
    tables = reader.read(store, events)
    if tables is None:
        return AgentStatus(generation=0, state=AgentState.WAITING_FOR_TABLES), None, []
    macs = kernel.port_macs()
    desired = desired_state(tables, frozenset(macs), kernel.uplink_mtu(tables.uplink))
    ops = reconcile(kernel, desired, converged)
    if ops:
        log.info("generation %d: applied %d ops", tables.generation, len(ops))
    state = AgentState.WAITING_FOR_PORTS if desired.missing_ports else AgentState.CONVERGED
    return AgentStatus(generation=tables.generation, state=state, content_hash=tables.content_hash,
                       missing_ports=tuple(sorted(desired.missing_ports))), desired, ops


def _needs_admission(store: Store, host: str, radius: str) -> bool:
    """NVO3 admission needs RADIUS; an IP-based VN needs the same process's ARP responder."""
    if radius:
        return True
    tables = published.read(store, host)
    return tables is not None and any(t.forwarding == "ip" for t in tables.vns)


PORT_WAIT = 0.05  # seconds between looks while a VM port is missing
VERIFY = 0.2  # a full read-back this long after the last pass that applied ops


STORE_RETRY = 1.0  # seconds between tries while the store is unreachable


def run(config: AgentConfig) -> None:
    host, store_url = config.host, config.store
    store = open_store(store_url)
    kernel = LinuxKernel(config.uplink)
    admission = ShardGroup(store, host, store_url, config.radius, config.secret_file, config.udp_port,
                           config.tunnel_port, shard_count(config.admission_shards))
    registration = Registration(config, lambda: ipv4_address(config.uplink))
    registration.start()
    stopping = stop_on_signals()
    rev = 0  # 0: not yet read from the store
    last: AgentStatus | None = None
    pacer = Pacer(PACE, DUTY, BURST)
    # The last desired state applied, and when everything is next read back regardless: a
    # pass in between reads only what its tables changed (a re-rated link: one class dump).
    converged: KernelState | None = None
    reader = published.Reader(host)
    events: list[Event] | None = None  # what the watch returned since the last pass (None: read the store)
    full_due = last_full = 0.0
    away = False
    while not stopping.is_set():
        pacer.pace()
        now = time.monotonic()
        try:
            if not rev:
                rev = store.revision() + 1
            if not admission.procs and _needs_admission(store, host, config.radius):
                admission.ensure()
            full = now >= full_due or converged is None
            if full:  # read back whole: the tables read and decoded afresh as well as the kernel
                reader, events = published.Reader(host), None
            try:
                status, converged, ops = sync(store, kernel, reader, None if full else converged, events)
            except Exception as e:  # report and retry next pass; the kernel keeps what it has
                if isinstance(e, StoreError):
                    raise
                log.exception("reconcile failed")
                status, converged, ops = AgentStatus(generation=-1, state=AgentState.ERROR, error=str(e)), None, []
            if full:
                last_full = now
            if full and not ops:
                full_due = now + config.resync  # read back whole and found as desired
            elif ops:  # read everything back once changes pause (a burst is not slowed by it)
                full_due = min(last_full + config.resync, now + VERIFY)
            if status != last:
                store.put(keys.status(host), status.to_json())
                last = status
            if away:
                log.info("store reachable again: resynced")
                away = False
            pacer.done()
            # a port the tables name is missing (a VM booting, or arriving by migration): look
            # again soon rather than at the next resync
            waiting = status.state is AgentState.WAITING_FOR_PORTS
            wait = PORT_WAIT if waiting else min(config.resync, max(full_due - time.monotonic(), 0.0))
            rev, events = follow(store, published.prefix(host), rev, timeout=wait)
        except StoreError as e:  # forward with the last tables; resync from scratch on return
            if not away:
                log.warning("store unreachable, forwarding with the last tables: %s", e)
                away = True
            rev, last, converged, events = 0, None, None, None
            stopping.wait(STORE_RETRY)
    registration.stop()
    admission.stop()
    kernel.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="tenet-agent", description="The NVE agent: one per host (docs/agent.md).")
    p.add_argument("--config", required=True, metavar="FILE", help="the agent's TOML configuration (docs/agent.md)")
    a = p.parse_args(argv)
    try:
        config = load_config(a.config)
    except ConfigError as e:
        p.error(str(e))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s[%(process)d] %(message)s")
    run(config)


if __name__ == "__main__":
    main()
