"""The agent's side of sharded admission: start the shards, keep them running, stop them.

Each shard is a child process (agent/admit.py) that dies with the agent. Their packet sockets
are made here, in order, because a fanout group's member index is its joining order — and
that index decides which shard owns a MAC (ethernet.shard_of). So the shards live and die
together: when one exits, the map from MAC to shard is gone, and all are restarted at once
(each then adopts its share of the attached TESs from the store). A watcher thread does
that within WATCH, well inside a TES's three hello intervals.

With metrics on, the shards write theirs where the agent merges them (agent/metrics.py).
"""
from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import threading

from tenet.aaa.failover import RadiusPolicy
from tenet.agent import admit
from tenet.agent.config import Accounting
from tenet.agent.metrics import MULTIPROC_ENV, AgentMetrics
from tenet.ethernet import fanout_sockets
from tenet.store import keys
from tenet.store.base import Delete, Store

log = logging.getLogger("tenet.agent")
WATCH = 0.1  # seconds between looks at the shards' exit status
PR_SET_PDEATHSIG = 1


def shard_count(requested: int) -> int:
    """0: one shard per CPU, at most 4 (each shard is a Python process that follows the store)."""
    return requested if requested > 0 else max(1, min(os.cpu_count() or 1, 4))


class ShardGroup:
    def __init__(self, store: Store, host: str, store_url: str, radius: str, secret_file: str, udp_port: int,
                 tunnel_port: int, shards: int, metrics: AgentMetrics | None = None,
                 radius_policy: RadiusPolicy = RadiusPolicy(), accounting: Accounting = Accounting()) -> None:
        self.store, self.host, self.shards, self.metrics = store, host, shards, metrics
        self.argv = lambda k, fd: admit.argv_for(host, store_url, radius, secret_file, udp_port, tunnel_port,
                                                 k, shards, fd, radius_policy, accounting)
        self.procs: list[subprocess.Popen] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.watcher: threading.Thread | None = None

    def ensure(self) -> None:
        """Idempotent: start the shards if they do not run yet (and watch them from then on)."""
        with self.lock:
            if self.procs or self.stopping.is_set():
                return
            self._start()
            if self.watcher is None:
                self.watcher = threading.Thread(target=self._watch, name="admission-shards", daemon=True)
                self.watcher.start()

    def _start(self) -> None:
        self.store.txn([], [Delete(kv.key) for kv in self.store.range(keys.admission_prefix(self.host))])
        socks = fanout_sockets(self.shards, os.getpid(), arp=True, eapol=True)
        env = None
        if self.metrics is not None:
            env = {**os.environ, MULTIPROC_ENV: self.metrics.share_with_shards()}
        try:
            self.procs = [subprocess.Popen(self.argv(k, s.fileno()), pass_fds=(s.fileno(),), preexec_fn=_die_with_parent,
                                           env=env)
                          for k, s in enumerate(socks)]
        finally:
            for s in socks:  # the children hold them now
                s.close()

    def _watch(self) -> None:
        while not self.stopping.wait(WATCH):
            with self.lock:
                exited = [(k, p.returncode) for k, p in enumerate(self.procs) if p.poll() is not None]
                if not exited or self.stopping.is_set():
                    continue
                log.error("admission shard %d exited with %s; restarting all %d", *exited[0], len(self.procs))
                _stop(self.procs)
                self._gone(self.procs)
                try:
                    self._start()
                except Exception:  # e.g. a store outage: the next look tries again
                    log.exception("restarting admission failed")
                    self.procs = []

    def stop(self) -> None:
        self.stopping.set()
        with self.lock:
            _stop(self.procs)
            self._gone(self.procs)
            self.procs = []

    def _gone(self, procs: list[subprocess.Popen]) -> None:
        for p in procs if self.metrics is not None else ():
            self.metrics.shard_gone(p.pid)


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(3)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _die_with_parent() -> None:
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
