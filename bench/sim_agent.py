"""Simulated agents for bench/scale.py: no kernel, only what an agent does with the store.

    python bench/sim_agent.py --store URL --ack /path/to/bench.sock h00000 h00004 ...

One thread per host, each with a store client of its own (as every real agent has): it
watches `published.prefix(host)`, and on every wake hands what the watch returned to its
`published.Reader` (as the agent does: only changed VN tables are decoded, from the values the
watch carried, reading the store only for what it lacks) and acknowledges each VN whose
destination set changed, as one datagram on the bench's UNIX socket:

    {"host": h, "t": time.monotonic(), "woke": when its watch returned, "gen": generation, "vn": vn,
     "macs": [destinations]}

("macs": [] when the VN left the host). After its first read each host sends
{"host": h, "ready": generation} once its watch position is fixed, so the bench starts
changing only when every agent would hear it. CLOCK_MONOTONIC is one clock for every process
of the machine, so the bench can subtract its write time from "t". SIGTERM stops the process.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import threading
import time

from tenet.store import published
from tenet.store.base import Store, StoreError, follow
from tenet.store.open import open_store
from tenet.store.records import HostTables

WAKE = 60.0  # s: the longest watch wait; a stop does not wait for it (os._exit), so only an idle re-watch costs it


def destinations(tables: HostTables | None) -> dict[str, frozenset[str]]:
    """Each VN of the host and the destinations its table lists (internal MACs, and the
    broadcast row: kept, since only membership of a MAC is ever asked)."""
    if tables is None:
        return {}
    return {t.vn: frozenset(e.destination for e in t.entries) for t in tables.vns}


class Acks:
    """The datagram socket to the bench, shared by the threads (sendto is atomic per datagram)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    def send(self, msg: dict) -> None:
        self.sock.sendto(json.dumps(msg, separators=(",", ":")).encode(), self.path)


def serve(url: str, host: str, acks: Acks, stopping: threading.Event) -> None:
    store: Store = open_store(url)
    try:
        reader = published.Reader(host)  # as the agent's: decodes only the VN tables whose digest changed
        while True:  # a thousand first reads at once can outlast a request's timeout: retry, as an agent does
            try:
                rev = store.revision() + 1  # before the first read: a write after it wakes the watch
                tables = reader.read(store)
                break
            except StoreError:
                if stopping.wait(0.5):
                    return
        known = destinations(tables)
        acks.send({"host": host, "ready": tables.generation if tables else 0})
        while not stopping.is_set():
            rev, events = follow(store, published.prefix(host), rev, WAKE)
            if events == []:
                continue
            woke = time.monotonic()
            tables = reader.read(store, events)
            now_macs = destinations(tables)
            t = time.monotonic()
            gen = tables.generation if tables else 0
            for vn in sorted(set(known) | set(now_macs)):
                macs = now_macs.get(vn, frozenset())
                if known.get(vn) != macs:
                    acks.send({"host": host, "t": t, "woke": woke, "gen": gen, "vn": vn, "macs": sorted(macs)})
            known = now_macs
    except Exception as e:  # say which host died and why; the bench's timeout names the host too
        acks.send({"host": host, "error": f"{type(e).__name__}: {e}"})
        raise
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="sim_agent")
    p.add_argument("--store", required=True)
    p.add_argument("--ack", required=True, help="the bench's UNIX datagram socket")
    p.add_argument("hosts", nargs="+")
    a = p.parse_args(argv)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    acks = Acks(a.ack)
    threading.stack_size(512 * 1024)
    threads = [threading.Thread(target=serve, args=(a.store, h, acks, stopping), daemon=True, name=h) for h in a.hosts]
    for t in threads:
        t.start()
    stopping.wait()
    sys.stdout.flush()
    os._exit(0)  # the watches end within WAKE; nothing of ours needs them to


if __name__ == "__main__":
    raise SystemExit(main())
