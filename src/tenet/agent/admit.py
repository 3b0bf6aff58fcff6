"""The NVE's admission processes: NVO3 discovery and RADIUS relaying, beside the reconciler.

Under churn both admission and reconciliation burn CPU; in one Python process they share a
GIL and throttle each other. So the agent runs admission as child processes (same network
namespace; they die with their parent), one per shard of the TES MACs (shards.py). Each needs
only its host's published tables (what it may offer, as what kind of NVE) — port MACs it reads
itself — and what it decides leaves as endpoint keys in the store, exactly as before. Its
metrics reach the agent's /metrics through files (agent/metrics.py), when the agent asks.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import time
from pathlib import Path

from tenet.aaa.failover import RadiusPolicy, ServerListError, parse_servers
from tenet.aaa.radius import RadiusClient, RadiusMux
from tenet.agent import shards as shard_control
from tenet.agent.accountant import Accountant, servers_of
from tenet.agent.config import Accounting
from tenet.agent.discovery import Discovery
from tenet.agent.metrics import AdmissionMetrics
from tenet.agent.session_counters import table_name
from tenet.pace import Pacer
from tenet.store import keys, published
from tenet.store.base import Delete, Store, StoreError, follow
from tenet.store.open import open_store
from tenet.store.records import AdmissionReady, RecordError, Revocation
from tenet.wire.discovery import ACCESS_TUNNEL_PORT, SERVER_PORT
from tenet.stopping import stop_on_signals

log = logging.getLogger("tenet.admit")


FOLLOW_PACE = 0.05  # what admission follows (its tables' VNs and role, revocations) changes rarely
RESYNC = 10.0  # s between reads of the host's tables from the store (in between, the watch's values)


def follow_tables(store: Store, host: str, d: Discovery, stopping: threading.Event) -> None:
    """Level-triggered: hand the latest version of the host's tables to admission; under
    endpoint churn (every admission changes them) at most 20 times a second. Ready (the lab
    waits for this) once the tables and the VNs it may offer have both been read."""
    rev, last, reader = store.revision() + 1, None, published.Reader(host)
    events = None  # what the watch carried (None: read the store)
    pacer = Pacer(FOLLOW_PACE)
    resync = 0.0
    while not stopping.is_set():
        pacer.pace()
        if time.monotonic() >= resync:  # level-triggered: the store itself now and then, not only the watch
            events, resync = None, time.monotonic() + RESYNC
        tables = reader.read(store, events)
        if tables is not None and tables.content_hash != last:
            d.configure(tables)
            if last is None:
                d.serve(published.read_servable(store))
                ready = AdmissionReady(pid=os.getpid(), serves=tuple(s.vn for s in d.nve.serves), shard=d.shard,
                                       shards=d.shards)
                store.put(keys.admission(host, d.shard), ready.to_json())
            last = tables.content_hash
        pacer.done()
        rev, events = follow(store, published.prefix(host), rev, timeout=1.0)


def follow_servable(store: Store, host: str, d: Discovery, stopping: threading.Event) -> None:
    """The VNs this NVE may offer: one key for every host (store/published.py), watched apart
    from the host's tables."""
    rev = store.revision() + 1
    d.serve(published.read_servable(store))
    while not stopping.is_set():
        rev, events = follow(store, keys.servable(), rev, timeout=1.0)
        if events is None or events:
            d.serve(published.read_servable(store))


def follow_revocations(store: Store, host: str, d: Discovery, stopping: threading.Event) -> None:
    """Shard 0: `tenet detach` writes a key per VN and MAC; end that session in whichever shard
    has it, then clear the request. Looked at every FOLLOW_PACE rather than watched: under churn
    a watcher wakes on every commit to the store, and revocations are rare."""
    while not stopping.is_set():
        for kv in store.range(keys.revoke_prefix(host)):  # level: whatever is requested now
            cmd = revocation_command(host, kv.key, kv.value)
            done = d.command(cmd)
            d.metrics.revocations.labels("ended" if done else "no_session").inc()
            log.info("revoke %s in %s: %s (%s)", cmd.mac, cmd.vn or "every VN", cmd.why,
                     "ended" if done else "no session here")
            store.txn([], [Delete(kv.key)])
        stopping.wait(FOLLOW_PACE)


def revocation_command(host: str, key: str, value: bytes) -> shard_control.Command:
    """A revoke request as the shards' command: its VN from the record, or from the key when the
    record is unreadable (still a request to end the session, with the default reason)."""
    vn, mac = keys.revoke_parts(host, key)
    try:
        r = Revocation.from_json(value)
    except RecordError as e:
        log.warning("%s: %s", key, e)
        r = Revocation(vn=vn)
    return shard_control.Command("revoke", mac, r.why, vn=r.vn or vn)


def resilient(loop, store: Store, host: str, d: Discovery, stopping: threading.Event) -> None:
    """A follower thread outlives the store going away: it starts over (level-triggered, so
    from scratch) once the store answers again."""
    while not stopping.is_set():
        try:
            loop(store, host, d, stopping)
        except StoreError as e:
            log.warning("%s: store unreachable, retrying: %s", loop.__name__, e)
            stopping.wait(1.0)


def run(host: str, store_url: str, radius: str, secret_file: str, udp_port: int = SERVER_PORT,
        tunnel_port: int = ACCESS_TUNNEL_PORT, shard: int = 0, shards: int = 1, packet_fd: int = -1,
        policy: RadiusPolicy = RadiusPolicy(), accounting: Accounting = Accounting()) -> None:
    mux = None  # without RADIUS nothing is offered; the ARP responder of IP-based VNs still runs
    accountant = None
    metrics = AdmissionMetrics()
    if radius:
        servers = parse_servers(radius)
        secret = Path(secret_file).read_text().strip()
        client = RadiusClient(servers[0].ip, secret, servers[0].port, policy.timeout, policy.retries, nas_identifier=host)
        mux = RadiusMux(client, policy, servers)
        if accounting.port:  # to the same servers, in the same order (agent/accountant.py)
            accountant = Accountant(servers=servers_of(radius, accounting.port), secret=secret.encode(),
                                    nas_identifier=host, table=table_name(shard), interim=accounting.interim,
                                    interim_min=accounting.interim_min, metrics=metrics,
                                    sweep_from=shards if shard == 0 else None)
    sock = socket.socket(fileno=packet_fd) if packet_fd >= 0 else None  # our member of the agent's fanout group
    d = Discovery(open_store(store_url), host, mux, udp_port if radius else 0, tunnel_port, sock, shard, shards,
                  metrics=metrics, accountant=accountant)
    if accountant is not None:
        accountant.start()
    stopping = stop_on_signals(also=d.stop)
    threading.Thread(target=resilient, args=(follow_tables, open_store(store_url), host, d, stopping), name="tables",
                     daemon=True).start()
    threading.Thread(target=resilient, args=(follow_servable, open_store(store_url), host, d, stopping),
                     name="servable", daemon=True).start()
    if shard == 0:
        threading.Thread(target=resilient, args=(follow_revocations, open_store(store_url), host, d, stopping),
                         name="revocations", daemon=True).start()
    else:
        threading.Thread(target=shard_control.serve, args=(host, shard, d.apply, stopping), name="control",
                         daemon=True).start()
    d.run()


def argv_for(host: str, store_url: str, radius: str, secret_file: str, udp_port: int, tunnel_port: int,
             shard: int = 0, shards: int = 1, packet_fd: int = -1, policy: RadiusPolicy = RadiusPolicy(),
             accounting: Accounting = Accounting()) -> list[str]:
    argv = [sys.executable, "-m", "tenet.agent.admit", "--host", host, "--store", store_url,
            "--udp-port", str(udp_port), "--tunnel-port", str(tunnel_port),
            "--shard", str(shard), "--shards", str(shards), "--packet-fd", str(packet_fd)]
    if not radius:
        return argv
    return argv + ["--radius", radius, "--secret-file", secret_file, "--radius-timeout", str(policy.timeout),
                   "--radius-retries", str(policy.retries), "--radius-dead-time", str(policy.dead_time),
                   *([] if policy.status_server else ["--no-status-server"]),
                   "--accounting-port", str(accounting.port), "--interim", str(accounting.interim),
                   "--interim-min", str(accounting.interim_min)]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="tenet-admit", description="NVO3 admission for one NVE (started by tenet-agent)")
    p.add_argument("--host", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--radius", default="",
                   help="IP:PORT of the RADIUS servers, comma-separated, primary first; none: no NVO3 admission")
    p.add_argument("--secret-file", default="")
    default = RadiusPolicy()
    p.add_argument("--radius-timeout", type=float, default=default.timeout, help="seconds per transmission")
    p.add_argument("--radius-retries", type=int, default=default.retries,
                   help="retransmissions to one server before the next is tried")
    p.add_argument("--radius-dead-time", type=float, default=default.dead_time,
                   help="seconds a server that timed out is skipped")
    p.add_argument("--no-status-server", action="store_true",
                   help="retry a dead server after its dead time instead of probing it with Status-Server")
    p.add_argument("--udp-port", type=int, default=SERVER_PORT)
    p.add_argument("--tunnel-port", type=int, default=ACCESS_TUNNEL_PORT)
    p.add_argument("--shard", type=int, default=0, help="which shard of the TES MACs this process serves")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--packet-fd", type=int, default=-1,
                   help="an inherited packet socket (the agent's fanout group member); none: open one")
    p.add_argument("--accounting-port", type=int, default=Accounting.port,
                   help="RADIUS accounting port of the servers (0: no accounting)")
    p.add_argument("--interim", type=int, default=Accounting.interim,
                   help="seconds between Interim-Updates unless RADIUS says (0: none)")
    p.add_argument("--interim-min", type=int, default=Accounting.interim_min,
                   help="the shortest interim interval honoured, RADIUS's or ours")
    a = p.parse_args(argv)
    if not 0 <= a.shard < a.shards:
        p.error(f"--shard must be 0..{a.shards - 1}")
    try:
        if a.radius:
            parse_servers(a.radius)
        policy = RadiusPolicy(a.radius_timeout, a.radius_retries, a.radius_dead_time, not a.no_status_server)
        accounting = Accounting(a.accounting_port, a.interim, a.interim_min)
    except (ServerListError, ValueError) as e:
        p.error(str(e))
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s[%(process)d] %(message)s")
    # every attach and detach is logged: skip what the format does not show (the caller's
    # file and line is a stack walk per record; thread names; multiprocessing's process name)
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = logging.logMultiprocessing = False
    run(a.host, a.store, a.radius, a.secret_file, a.udp_port, a.tunnel_port, a.shard, a.shards, a.packet_fd, policy,
        accounting)


if __name__ == "__main__":
    main()
