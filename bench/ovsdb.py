"""A minimal OVSDB client (RFC 7047 JSON-RPC over a unix socket), so that bench/peer_ovn.py
times OVN's writes by the database's own answer.

`ovs-vsctl --no-wait` and `ovn-nbctl` return after their transaction commits, but each first
reads the whole database (≈ 12 ms per run here) and, on 2 shared cores, often leaves after the
daemons that the commit woke have already acted: the first packet was seen *before* ovs-vsctl
returned in a third of the rounds. A transaction sent from the bench's own process gives both
edges: the request sent, and the reply received — the commit.
"""
from __future__ import annotations

import json
import socket
import time
from typing import Any


class OvsdbError(RuntimeError):
    pass


class Ovsdb:
    """One connection to an ovsdb-server's unix socket."""

    def __init__(self, path: str, db: str) -> None:
        self.db = db
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 0
        self.decoder = json.JSONDecoder()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Ovsdb":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _message(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            text = self.buf.lstrip()
            if text:
                try:
                    msg, end = self.decoder.raw_decode(text.decode())
                    self.buf = text.decode()[end:].encode()
                    return msg
                except (json.JSONDecodeError, UnicodeDecodeError):
                    pass  # incomplete: read more
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise OvsdbError(f"no answer from {self.db} in {timeout:.0f} s") from None
            if not data:
                raise OvsdbError(f"{self.db}: the server closed the connection")
            self.buf += data

    def transact(self, *ops: dict, timeout: float = 10.0) -> tuple[float, float, list]:
        """Run `ops` as one transaction: (request sent, reply received) on CLOCK_MONOTONIC, and
        the per-operation results. OvsdbError when any operation failed."""
        self.next_id += 1
        rid = self.next_id
        req = json.dumps({"method": "transact", "params": [self.db, *ops], "id": rid}).encode()
        sent = time.monotonic()
        self.sock.sendall(req)
        while True:
            msg = self._message(timeout)
            if msg.get("method") == "echo":  # the server's keepalive
                self.sock.sendall(json.dumps({"result": msg.get("params", []), "error": None,
                                              "id": msg.get("id")}).encode())
                continue
            if msg.get("id") == rid:
                break
        done = time.monotonic()
        if msg.get("error"):
            raise OvsdbError(f"{self.db}: {msg['error']}")
        results: list[Any] = msg.get("result") or []
        failed = [r for r in results if isinstance(r, dict) and r.get("error")]
        if failed:
            raise OvsdbError(f"{self.db}: {failed}")
        return sent, done, results


def add_port(bridge: str, dev: str, iface_id: str) -> list[dict]:
    """`ovs-vsctl add-port <bridge> <dev> -- set Interface <dev> external_ids:iface-id=…`."""
    return [
        {"op": "insert", "table": "Interface", "uuid-name": "iface",
         "row": {"name": dev, "external_ids": ["map", [["iface-id", iface_id]]]}},
        {"op": "insert", "table": "Port", "uuid-name": "port", "row": {"name": dev, "interfaces": ["named-uuid", "iface"]}},
        {"op": "mutate", "table": "Bridge", "where": [["name", "==", bridge]],
         "mutations": [["ports", "insert", ["set", [["named-uuid", "port"]]]]]},
    ]


def lsp_add(switch: str, name: str, addresses: str) -> list[dict]:
    """`ovn-nbctl lsp-add <switch> <name> -- lsp-set-addresses <name> "<mac> <ip>"`."""
    return [
        {"op": "insert", "table": "Logical_Switch_Port", "uuid-name": "lsp",
         "row": {"name": name, "addresses": ["set", [addresses]]}},
        {"op": "mutate", "table": "Logical_Switch", "where": [["name", "==", switch]],
         "mutations": [["ports", "insert", ["set", [["named-uuid", "lsp"]]]]]},
    ]
