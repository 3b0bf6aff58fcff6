"""A one-member etcd on loopback for the benches, in a temporary directory of its own, the way
tests/unit/etcd_cluster.py starts one; stopped by its PID, and only that directory removed.

Large tables go into one transaction (100 hosts' tables to a commit), more than etcd's default
1.5 MiB request limit at 100,000 endpoints: the member takes `max_request_mb` (64 MiB) and a
backend quota of `quota_gb` (8 GiB, etcd's suggested maximum), since nothing compacts the
history of a bench run.
"""
from __future__ import annotations

import http.client
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ETCD = shutil.which("etcd")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class EtcdMember:
    def __init__(self, max_request_mb: int = 64, quota_gb: int = 8) -> None:
        if ETCD is None:
            raise RuntimeError("the etcd binary is not installed (scripts/setup.sh installs etcd-server)")
        self.dir = Path(tempfile.mkdtemp(prefix="tenet-bench-etcd-"))
        self.client, peer = _free_ports(2)
        self.proc: subprocess.Popen | None = None
        try:
            with open(self.dir / "etcd.log", "wb") as log:
                self.proc = subprocess.Popen(
                    [ETCD, "--name", "m0", "--data-dir", str(self.dir / "m0"),
                     "--listen-client-urls", f"http://127.0.0.1:{self.client}", "--advertise-client-urls", f"http://127.0.0.1:{self.client}",
                     "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-cluster", f"m0=http://127.0.0.1:{peer}", "--initial-cluster-state", "new",
                     "--initial-cluster-token", self.dir.name,
                     "--max-request-bytes", str(max_request_mb << 20), "--quota-backend-bytes", str(quota_gb << 30)],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"etcd://127.0.0.1:{self.client}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _wait_ready(self) -> None:
        """Until it serves a linearizable read (it has elected itself)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                break
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.client, timeout=5)
                try:
                    conn.request("POST", "/v3/kv/range", '{"key": "AA=="}')
                    if b'"header"' in conn.getresponse().read():
                        return
                finally:
                    conn.close()
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"etcd did not start within 30 s: {(self.dir / 'etcd.log').read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
