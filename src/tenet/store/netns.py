"""TCP connections made from inside another network namespace.

The lab's root-side tools (tests, the `tenet` CLI) must reach the etcd members on the lab's
management network without wiring the root namespace to it. A socket belongs to the network
namespace it was created in, so the calling thread enters the named namespace (setns(2),
which changes only that thread) just for socket(2) and returns at once; connect and all I/O
then run as usual. Needs CAP_SYS_ADMIN (root). Host names resolve in the caller's namespace.
"""
from __future__ import annotations

import ctypes
import errno
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from tenet.store.base import StoreError

NETNS_DIR = "/run/netns"  # where `ip netns add` binds named namespaces
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, name: str) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        why = " (needs CAP_SYS_ADMIN: run as root)" if err == errno.EPERM else ""
        raise StoreError(f"cannot enter network namespace {name!r}: {os.strerror(err)}{why}")


@contextmanager
def inside(name: str) -> Iterator[None]:
    """Run the block with the calling thread in network namespace `name`, then back."""
    path = f"{NETNS_DIR}/{name}"
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise StoreError(f"network namespace {name!r} does not exist (no {path})") from None
    except OSError as e:
        raise StoreError(f"cannot open network namespace {name!r}: {e}") from None
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target, name)
            try:
                yield
            finally:
                if _libc.setns(home, CLONE_NEWNET) != 0:  # unreachable: we could enter a moment ago
                    raise RuntimeError(f"cannot return from network namespace {name!r}: {os.strerror(ctypes.get_errno())}")
        finally:
            os.close(home)
    finally:
        os.close(target)


def dial(host: str, port: int, timeout: float, netns: str | None = None) -> socket.socket:
    """A TCP connection to host:port, its socket created in `netns` (None: here), with Nagle's
    algorithm off: http.client writes a request's headers and its body separately (two TLS
    records), and with Nagle on the body waited for the server's delayed ACK of the headers —
    40 ms added to every etcd request over a real link (measured in a lab: 44 ms a get, 1.4 ms
    without; docs/benchmarks.md, "The control plane on SQLite and on etcd")."""
    if netns is None:
        sock = socket.create_connection((host, port), timeout)
    else:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with inside(netns):
            sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(timeout)
            sock.connect(address)
        except BaseException:
            sock.close()
            raise
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock
