"""`tenet-proxy`: the agent of a host behind an access switch (role proxy-8021x, seed 000).

Its VMs hold no credentials and run nothing: when a VM's port appears (created, or arrived by
migration) this agent authenticates it toward the switch with EAPOL frames whose source is the
VM's MAC, using the identity and secret the host keeps for that VM (the controller publishes
them under this host's prefix, controller/proxies.py: the host never reads the intent, which
holds every VM's password); when the port goes it sends EAPOL-Logoff. The state machine is
agent/proxy8021x.py; this is its I/O.
"""
from __future__ import annotations

import argparse
import logging
import os
import select
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from tenet.agent.proxy8021x import Credentials, Emit, Proxy
from tenet.ethernet import packet_socket
from tenet.store import keys
from tenet.store.base import Store
from tenet.store.open import open_store
from tenet.store.records import ProxyPorts, RecordError
from tenet.wire import eapol
from tenet.wire.errors import DecodeError
from tenet.stopping import stop_on_signals

log = logging.getLogger("tenet.proxy")
SCAN = 1.0  # a look at the VM ports at least this often; a kernel link event triggers one at once
RTMGRP_LINK = 1
TRACE = os.environ.get("TENET_TRACE") == "1"  # bench/proxy8021x.py --trace: the path's hops, on CLOCK_MONOTONIC


def trace(event: str, key: str) -> None:
    if TRACE:
        log.info("trace %s %s %.6f", event, key, time.monotonic())


def link_events() -> socket.socket:
    """rtnetlink's link group: any VM port created, removed or changed wakes the loop."""
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    s.bind((0, RTMGRP_LINK))
    s.setblocking(False)
    return s


@dataclass(frozen=True)
class VmRecord:
    """What the host knows of one VM port: whose MAC, which VN, and the secret it vouches with."""

    mac: str
    vn: str
    creds: Credentials | None  # None: MAB


def vm_records(ports: ProxyPorts) -> dict[str, VmRecord]:
    """VM port -> its record, from what the controller published for this host."""
    return {p.port: VmRecord(p.mac, p.vn, None if p.mab else Credentials(p.identity, p.password)) for p in ports.ports}


def read_records(store: Store, host: str, last: dict[str, VmRecord]) -> dict[str, VmRecord]:
    """This host's published VM ports (none yet: none). A malformed value keeps the last ones."""
    kv = store.get(keys.proxy(host))
    if kv is None:
        return {}
    try:
        return vm_records(ProxyPorts.from_json(kv.value))
    except RecordError as e:
        log.error("%s: %s", keys.proxy(host), e)
        return last


def guard(records: dict[str, VmRecord], present: set[str]) -> str:
    """The host's half of the threat model: it knows which port each VM is on, so a frame
    entering its bridge from a VM port with another source MAC (a VM forging a neighbour's
    authorized MAC) is dropped here, before the switch could be fooled by it. And it knows each
    VM's VN: its bridge is one L2 segment under all of them, so frames between VM ports of
    different VNs (a broadcast, above all) are dropped too — only the switch joins VNs."""
    ports = {port: r for port, r in sorted(records.items()) if port in present}
    rules = [f'    iifname "{port}" ether saddr != {r.mac} counter drop\n' for port, r in ports.items()]
    body = "".join(rules) or "    counter\n"
    pairs = [f'"{a}" . "{b}"' for a, ra in ports.items() for b, rb in ports.items() if a != b and ra.vn == rb.vn]
    names = ", ".join(f'"{p}"' for p in ports)
    apart = ((f"    iifname . oifname {{ {', '.join(pairs)} }} accept\n" if pairs else "")
             + f"    iifname {{ {names} }} oifname {{ {names} }} counter drop\n") if ports else "    counter\n"
    return (f"table bridge tenet_proxy {{\n  chain vm_sources {{\n"
            f"    type filter hook prerouting priority -200; policy accept;\n{body}  }}\n"
            f"  chain vm_vns {{\n    type filter hook forward priority 0; policy accept;\n{apart}  }}\n}}\n")


def apply_guard(text: str) -> None:
    script = f"table bridge tenet_proxy {{}}\ndelete table bridge tenet_proxy\n{text}"
    r = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    if r.returncode:
        log.error("source-MAC guard not applied: %s", r.stderr.strip())


def run(host: str, store_url: str, uplink: str = "up0") -> None:
    store = open_store(store_url)
    stopping = stop_on_signals()
    sock = packet_socket(eapol=True, nvo3=False)
    sock.bind((uplink, 0))
    events = link_events()
    proxy, up, next_scan, guarded = Proxy(), set(), 0.0, ""
    records: dict[str, VmRecord] = {}

    def emit(out: list[Emit]) -> None:
        for e in out:
            sock.send(eapol.frame(e.dst, e.src, e.frame))
            if e.frame.type == eapol.EapolType.START:
                trace("start", e.src)
            log.info("%s for %s", e.frame.type.name if e.frame.type != eapol.EapolType.EAP else "EAP", e.src)

    while not stopping.is_set():
        now = time.monotonic()
        if now >= next_scan:
            records = read_records(store, host, records)
            present = set(os.listdir("/sys/class/net"))
            wanted = guard(records, present)
            if wanted != guarded:  # level: rewrite only when the VM ports changed
                apply_guard(wanted)
                guarded = wanted
            for port, r in records.items():
                if port in present and r.mac not in up:
                    up.add(r.mac)
                    emit(proxy.vm_up(now, r.mac, r.creds))
            for mac in list(up):
                if not any(r.mac == mac and p in present for p, r in records.items()):
                    up.discard(mac)
                    emit(proxy.vm_down(mac))  # removed, or migrated away: logoff on its behalf
            next_scan = now + SCAN
        ready, _, _ = select.select([sock, events], [], [], max(0.0, next_scan - time.monotonic()))
        if events in ready:
            trace("wake", "-")
            try:
                while events.recv(65536):
                    pass
            except BlockingIOError:
                pass
            next_scan = 0.0  # a port came or went: look now
        if sock in ready:
            data = sock.recv(2048)  # incoming only: the socket filter drops what we send
            try:
                dst, src, f = eapol.unframe(data)
            except DecodeError as e:
                log.warning("malformed EAPOL on %s: %s", uplink, e)
                continue
            was = proxy.vms.get(dst)
            emit(proxy.on_eapol(time.monotonic(), dst, src, f))
            if TRACE and (vm := proxy.vms.get(dst)) and vm.state == "authorized" and vm != was:
                trace("success", dst)
        emit(proxy.tick(time.monotonic()))
    # no logoff on the way out: the VMs are still there, and a restarted proxy just asks again


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="tenet-proxy", description="802.1X on behalf of this host's VMs")
    p.add_argument("--host", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--uplink", default="up0")
    a = p.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s[%(process)d] %(message)s")
    run(a.host, a.store, a.uplink)


if __name__ == "__main__":
    main()
