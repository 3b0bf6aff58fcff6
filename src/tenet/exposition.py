"""Serving a process's Prometheus metrics: `--metrics ADDR:PORT` → http://ADDR:PORT/metrics.

Every process kind keeps its metric objects in a registry of its own (controller/metrics.py,
agent/metrics.py, agent/proxy_metrics.py), never prometheus_client's global default, so tests
build as many as they like. This module only parses the listen address and serves one.
"""
from __future__ import annotations

import argparse
import ipaddress
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, start_http_server


class ListenError(ValueError):
    """A --metrics value that is not ADDR:PORT, or an address we cannot listen on."""


@dataclass(frozen=True)
class Listen:
    addr: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.addr}]" if ":" in self.addr else self.addr
        return f"http://{host}:{self.port}/metrics"


def parse_listen(text: str, what: str = "metrics address") -> Listen:
    """ "127.0.0.1:9108" or "[::1]:9108"; the error names what is wrong."""
    addr, sep, port = text.rpartition(":")
    addr = addr.removeprefix("[").removesuffix("]")
    if not sep or not addr:
        raise ListenError(f"{what} {text!r}: expected ADDR:PORT, e.g. 127.0.0.1:9108")
    try:
        ipaddress.ip_address(addr)
    except ValueError:
        raise ListenError(f"{what} {text!r}: {addr!r} is not an IP address") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ListenError(f"{what} {text!r}: port {port!r} is not 1..65535")
    return Listen(addr, int(port))


def serve(registry: CollectorRegistry, listen: Listen) -> None:
    """/metrics of `registry` on a daemon thread, for the life of the process."""
    try:
        start_http_server(listen.port, listen.addr, registry=registry)
    except OSError as e:
        raise ListenError(f"cannot serve metrics at {listen.addr}:{listen.port}: {e.strerror or e}") from None


def serve_option(parser: argparse.ArgumentParser, registry: CollectorRegistry, text: str) -> None:
    """A daemon's `--metrics` value: served if given; a bad one ends the process through
    `parser`, naming the cause, before it does anything else."""
    if not text:
        return
    try:
        serve(registry, parse_listen(text))
    except ListenError as e:
        parser.error(str(e))
