"""The agent process (the NVE): one per host, inside the host's network namespace.

Level-triggered: a store event or the resync timer only wakes it; every pass reads the whole
desired state (its host's tables) and the whole actual state (the kernel) and converges.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from tenet.agent.shard_group import ShardGroup, shard_count
from tenet.agent.desired import desired_state
from tenet.pace import Pacer
from tenet.wire.discovery import ACCESS_TUNNEL_PORT, SERVER_PORT
from tenet.agent.kernel.netlink import LinuxKernel
from tenet.agent.kernel.state import KernelState
from tenet.agent.reconcile import Kernel, reconcile
from tenet.store import keys
from tenet.store.records import AgentState, AgentStatus, HostTables
from tenet.store.base import Store, follow
from tenet.store.open import open_store
from tenet.stopping import stop_on_signals

log = logging.getLogger("tenet.agent")
PACE = 0.02  # under table churn, at most one reconcile per 20 ms (each applies the latest tables) …
DUTY = 2.0  # … and at most a third of a core: admission (a child process) needs the rest under churn
BURST = 0.1  # quiet time banks up to this much pacing: changes one at a time never wait


def sync(store: Store, kernel: Kernel, host: str, converged: KernelState | None = None
         ) -> tuple[AgentStatus, KernelState | None, list]:
    """One pass: the status to report, the desired state and the ops applied. Without
    published tables the agent touches nothing (never delete blind). `converged`: see
    reconcile()."""
    kv = store.get(keys.tables(host))
    if kv is None:
        return AgentStatus(generation=0, state=AgentState.WAITING_FOR_TABLES), None, []
    tables = HostTables.from_json(kv.value)
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
    kv = store.get(keys.tables(host))
    return kv is not None and any(t.forwarding == "ip" for t in HostTables.from_json(kv.value).vns)


PORT_WAIT = 0.05  # seconds between looks while a VM port is missing
VERIFY = 0.2  # a full read-back this long after the last pass that applied ops


def run(host: str, store_url: str, resync: float = 2.0, radius: str = "", secret_file: str = "",
        udp_port: int = SERVER_PORT, tunnel_port: int = ACCESS_TUNNEL_PORT, shards: int = 1) -> None:
    store = open_store(store_url)
    kernel = LinuxKernel()
    admission = ShardGroup(store, host, store_url, radius, secret_file, udp_port, tunnel_port, shards)
    stopping = stop_on_signals()
    rev = store.revision() + 1
    last: AgentStatus | None = None
    pacer = Pacer(PACE, DUTY, BURST)
    # The last desired state applied, and when everything is next read back regardless: a
    # pass in between reads only what its tables changed (a re-rated link: one class dump).
    converged: KernelState | None = None
    full_due = last_full = 0.0
    while not stopping.is_set():
        pacer.pace()
        now = time.monotonic()
        try:
            if not admission.procs and _needs_admission(store, host, radius):
                admission.ensure()
            full = now >= full_due or converged is None
            status, converged, ops = sync(store, kernel, host, None if full else converged)
            if full:
                last_full = now
            if full and not ops:
                full_due = now + resync  # read back whole and found as desired
            elif ops:  # read everything back once changes pause (a burst is not slowed by it)
                full_due = min(last_full + resync, now + VERIFY)
        except Exception as e:  # report and retry next pass; the kernel keeps what it has
            log.exception("reconcile failed")
            status = AgentStatus(generation=-1, state=AgentState.ERROR, error=str(e))
            converged = None
        if status != last:
            store.put(keys.status(host), status.to_json())
            last = status
        pacer.done()
        # a port the tables name is missing (a VM booting, or arriving by migration): look
        # again soon rather than at the next resync
        waiting = status.state is AgentState.WAITING_FOR_PORTS
        wait = PORT_WAIT if waiting else min(resync, max(full_due - time.monotonic(), 0.0))
        rev, _ = follow(store, keys.tables(host), rev, timeout=wait)
    admission.stop()
    kernel.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="tenet-agent")
    p.add_argument("--host", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--resync", type=float, default=2.0)
    p.add_argument("--radius", default="", help="IP:PORT of the RADIUS server; enables NVO3 admission")
    p.add_argument("--secret-file", default="", help="file holding the RADIUS shared secret")
    p.add_argument("--udp-port", type=int, default=SERVER_PORT,
                   help="L3 transport: UDP port for TESs behind an L3 hop (0: L2 only)")
    p.add_argument("--tunnel-port", type=int, default=ACCESS_TUNNEL_PORT,
                   help="L3 transport: UDP port of the VXLAN access tunnels to those TESs")
    p.add_argument("--admission-shards", type=int, default=0,
                   help="admission processes, each serving a share of the TES MACs (0: one per CPU, at most 4)")
    a = p.parse_args(argv)
    if a.radius and not a.secret_file:
        p.error("--radius needs --secret-file")
    if a.admission_shards < 0:
        p.error("--admission-shards must be 0 (one per CPU) or more")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s[%(process)d] %(message)s")
    run(a.host, a.store, a.resync, a.radius, a.secret_file, a.udp_port, a.tunnel_port,
        shard_count(a.admission_shards))


if __name__ == "__main__":
    main()
