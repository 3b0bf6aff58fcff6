"""The etcd URL's `netns=` option: a client in the root namespace reaches a member listening
only inside another namespace, and its thread comes back to where it was."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from tenet.store.base import StoreError
from tenet.store.etcd import EtcdStore
from tenet.store.open import open_store

NS = "tn-nsx-etcd"  # ours: created and deleted here


def _netns(*argv: str) -> None:
    subprocess.run(["ip", "netns", *argv], check=True, capture_output=True)


@pytest.fixture
def member():
    """One etcd member on 127.0.0.1:23790 inside a scratch namespace."""
    if shutil.which("etcd") is None:
        pytest.skip("the etcd binary is not installed")
    _netns("add", NS)
    d = tempfile.mkdtemp(prefix="tenet-nsx-")
    proc = None
    try:
        _netns("exec", NS, "ip", "link", "set", "lo", "up")
        url = "http://127.0.0.1:23790"
        proc = subprocess.Popen(["ip", "netns", "exec", NS, "etcd", "--name", "m", "--data-dir", f"{d}/m",
                                 "--listen-client-urls", url, "--advertise-client-urls", url,
                                 "--listen-peer-urls", "http://127.0.0.1:23800", "--initial-advertise-peer-urls",
                                 "http://127.0.0.1:23800", "--initial-cluster", "m=http://127.0.0.1:23800"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        _netns("del", NS)
        shutil.rmtree(d)


def _here() -> int:
    return os.stat("/proc/thread-self/ns/net").st_ino


def test_a_client_in_the_root_namespace_reaches_a_member_in_another(member):
    home = _here()
    store = open_store(f"etcd://127.0.0.1:23790?netns={NS}")
    try:
        deadline = time.monotonic() + 20
        while True:  # until the member serves
            try:
                store.put("/ns", b"1")
                break
            except StoreError:
                assert time.monotonic() < deadline, "the member never served"
        assert store.get("/ns").value == b"1"
        assert [e.key for e in store.watch("/ns", 1, timeout=1)] == ["/ns"]
    finally:
        store.close()
    assert _here() == home  # the thread went back
    probe = socket.socket()
    try:  # nothing of it is reachable from here
        assert probe.connect_ex(("127.0.0.1", 23790)) != 0
    finally:
        probe.close()
    outside = EtcdStore([("127.0.0.1", 23790)], patience=0.3)
    with pytest.raises(StoreError, match="unreachable"):
        outside.get("/ns")
