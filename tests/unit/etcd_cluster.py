"""A real etcd for tests: Debian's etcd-server, `members` processes on loopback in a temporary
directory of their own, stopped by PID (tests/unit/conftest.py's `url` fixture starts one)."""
from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ETCD = shutil.which("etcd")
needs_etcd = pytest.mark.skipif(ETCD is None, reason="the etcd binary is not installed (scripts/setup.sh installs etcd-server)")


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class EtcdCluster:
    """`members` etcd processes on 127.0.0.1 in one temporary directory of their own; stopped
    by their PIDs, and only that directory is removed."""

    def __init__(self, members: int, heartbeat_ms: int = 10, election_ms: int = 100, tls: Path | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        """`tls`: a directory with ca.pem, server.pem, server-key.pem: clients must then speak
        TLS and present a certificate signed by the CA. `extra`: more etcd flags (bench/scale.py
        raises its request and quota limits)."""
        self.dir = Path(tempfile.mkdtemp(prefix="tenet-etcd-"))
        scheme = "https" if tls else "http"
        secure = ["--cert-file", str(tls / "server.pem"), "--key-file", str(tls / "server-key.pem"),
                  "--trusted-ca-file", str(tls / "ca.pem"), "--client-cert-auth"] if tls else []
        self.tls = tls
        ports = _free_ports(2 * members)
        self.client_ports, peer_ports = ports[:members], ports[members:]
        names = [f"m{i}" for i in range(members)]
        initial = ",".join(f"{n}=http://127.0.0.1:{p}" for n, p in zip(names, peer_ports))
        self.procs: list[subprocess.Popen] = []
        try:
            for name, client, peer in zip(names, self.client_ports, peer_ports):
                log = open(self.dir / f"{name}.log", "wb")
                self.procs.append(subprocess.Popen(
                    [ETCD, "--name", name, "--data-dir", str(self.dir / name),
                     "--listen-client-urls", f"{scheme}://127.0.0.1:{client}", "--advertise-client-urls", f"{scheme}://127.0.0.1:{client}",
                     "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                     "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", self.dir.name,
                     "--heartbeat-interval", str(heartbeat_ms), "--election-timeout", str(election_ms), *secure, *extra],
                    stdout=log, stderr=subprocess.STDOUT))
                log.close()
            for i in range(members):
                self.wait_ready(i)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return "etcd://" + ",".join(f"127.0.0.1:{p}" for p in self.client_ports)

    def post(self, member: int, path: str, body: str = "{}") -> bytes:
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(self.tls / "ca.pem"))
            ctx.load_cert_chain(self.tls / "client.pem", self.tls / "client-key.pem")
            conn: http.client.HTTPConnection = http.client.HTTPSConnection("127.0.0.1", self.client_ports[member], timeout=5, context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.client_ports[member], timeout=5)
        try:
            conn.request("POST", path, body)
            return conn.getresponse().read()
        finally:
            conn.close()

    def wait_ready(self, member: int) -> None:
        """Until the member serves a linearizable read (it has a leader): a readiness wait."""
        for _ in range(600):
            if self.procs[member].poll() is not None:
                break
            try:
                if b'"header"' in self.post(member, "/v3/kv/range", '{"key": "AA=="}'):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"etcd member {member} did not start: {(self.dir / f'm{member}.log').read_text()[-2000:]}")

    def leader(self) -> int:
        ids = {}
        for i, p in enumerate(self.procs):
            if p.poll() is None:
                status = json.loads(self.post(i, "/v3/maintenance/status"))
                ids[status["header"]["member_id"]] = i
                leader_id = status["leader"]
        return ids[leader_id]

    def kill(self, member: int) -> None:
        os.kill(self.procs[member].pid, signal.SIGKILL)
        self.procs[member].wait()

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        for p in self.procs:  # the data is thrown away: no need to wait for a graceful leave
            try:
                p.wait(1)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
        shutil.rmtree(self.dir)
