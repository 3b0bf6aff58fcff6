"""Runs inside a TES namespace for bench/attach.py: timed attach/detach rounds.

latency mode: per round, note the time, attach (DISCOVER...AUTH_RESULT), then send a UDP probe
every millisecond to the sink VM until the bench sees it arrive; terminate; wait until the
controller has removed the endpoint. rate mode: attach/terminate as fast as possible for a
bounded time and count admissions. Prints one JSON object.
"""
from __future__ import annotations

import json
import socket
import sys
import time

from tenet.store.published import read as read_tables
from tenet.store import keys
from tenet.store.open import open_store
from tenet.store.records import AgentStatus
from tenet.tes.client import Config, Tes
from tenet.tes.link import PacketLink


def published(store, host: str, mac: str) -> bool:
    t = read_tables(store, host)
    return bool(t) and any(e.destination == mac for v in t.vns for e in v.entries)


def applied(store, host: str) -> bool:
    t, s = read_tables(store, host), store.get(keys.status(host))
    return bool(t and s) and AgentStatus.from_json(s.value).generation == t.generation


def main() -> None:
    mode, identity, password, store_url, host, sink_ip, count = sys.argv[1:8]
    link = PacketLink("eth0")
    tes = Tes(link, Config("n1", 0, identity, password))
    store = open_store(store_url)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    out: dict = {"starts": [], "attached": []}
    deadline = time.monotonic() + float(count) if mode == "rate" else None
    rounds = 0
    while (deadline and time.monotonic() < deadline) or (not deadline and rounds < int(count)):
        t0 = time.monotonic()
        tes.attach()
        out["attached"].append(time.monotonic() - t0)
        out["starts"].append(t0)
        if mode == "latency":
            # probe until the sink has it; the payload names the round so late probes are told apart
            while not _sunk(udp, sink_ip, rounds):
                time.sleep(0.001)
        tes.terminate()
        if mode == "latency":  # wait until the removal is published *and* applied by the agent
            while published(store, host, link.mac) or not applied(store, host):
                time.sleep(0.002)
        rounds += 1
    print(json.dumps(out))


def _sunk(udp: socket.socket, ip: str, rnd: int) -> bool:
    udp.sendto(f"{rnd} {time.monotonic()}".encode(), (ip, 9999))
    udp.settimeout(0)
    try:
        data, _ = udp.recvfrom(64)
        return data.decode() == f"ack {rnd}"
    except BlockingIOError:
        return False


if __name__ == "__main__":
    main()
