"""`tenet-proxy`: the agent of a host behind an access switch (role proxy-8021x, seed 000).

Its VMs hold no credentials and run nothing: when a VM's port appears (created, or arrived by
migration) this agent authenticates it toward the switch with EAPOL frames whose source is the
VM's MAC, using the identity and secret the host keeps for that VM (the controller publishes
them under this host's prefix, controller/proxies.py: the host never reads the intent, which
holds every VM's password); when the port goes it sends EAPOL-Logoff. The state machine is
agent/proxy8021x.py, the records it follows agent/proxy_records.py; this is its I/O.
"""
from __future__ import annotations

import argparse
import logging
import os
import select
import socket
import sys
import time

from tenet.agent.kernel import nftables
from tenet.agent.kernel.linkdump import link_events
from tenet.agent.proxy8021x import Emit, Proxy
from tenet.agent.proxy_peer import TesPeer
from tenet.agent.proxy_metrics import ProxyMetrics
from tenet.agent.proxy_records import ProxyRecords, VmRecord
from tenet.ethernet import packet_socket
from tenet.exposition import serve_option
from tenet.store.open import open_store
from tenet.wire import eapol
from tenet.wire.errors import DecodeError
from tenet.stopping import stop_on_signals
from tenet import trace as tracing
from tenet.trace import trace

log = logging.getLogger("tenet.proxy")
SCAN = 1.0  # a look at the VM ports at least this often; a kernel link event triggers one at once


def guard(records: dict[str, VmRecord]) -> str:
    """The host's half of the threat model: it knows which port each VM is on, so a frame
    entering its bridge from a VM port with another source MAC (a VM forging a neighbour's
    authorized MAC) is dropped here, before the switch could be fooled by it. And it knows each
    VM's VN: its bridge is one L2 segment under all of them, so frames between VM ports of
    different VNs (a broadcast, above all) are dropped too — only the switch joins VNs.

    Rules name every *published* VM port, there or not (`iifname` compares names, so a rule
    for a port that does not exist yet matches nothing until it does): the guard is in place
    before the port is created, not once a link event has been seen — a VM attached to its
    bridge at once can send nothing unguarded — and a port appearing changes no rule, so
    vouching for it waits for no nftables transaction (see `run`)."""
    ports = dict(sorted(records.items()))
    rules = [f'    iifname "{port}" ether saddr != {r.mac} counter drop\n' for port, r in ports.items()]
    body = "".join(rules) or "    counter\n"
    pairs = [f'"{a}" . "{b}"' for a, ra in ports.items() for b, rb in ports.items() if a != b and ra.vn == rb.vn]
    names = ", ".join(f'"{p}"' for p in ports)
    apart = ((f"    iifname . oifname {{ {', '.join(pairs)} }} accept\n" if pairs else "")
             + f"    iifname {{ {names} }} oifname {{ {names} }} counter drop\n") if ports else "    counter\n"
    return (f"table bridge tenet_proxy {{\n  chain vm_sources {{\n"
            f"    type filter hook prerouting priority -200; policy accept;\n{body}  }}\n"
            f"  chain vm_vns {{\n    type filter hook forward priority 0; policy accept;\n{apart}  }}\n}}\n")


def apply_guard(text: str) -> bool:
    """Swap the guard table in one transaction, in-process (libnftables; no `nft` fork)."""
    r = nftables.run_script(f"table bridge tenet_proxy {{}}\ndelete table bridge tenet_proxy\n{text}")
    if r.returncode:
        log.error("source-MAC guard not applied: %s", r.stderr.strip())
    return r.returncode == 0


def drain(s: socket.socket) -> None:
    """Read a nonblocking socket empty; an overrun (ENOBUFS: events were lost) is fine, as the
    caller looks at every port next anyway."""
    try:
        while s.recv(65536):
            pass
    except BlockingIOError:
        pass
    except OSError as e:
        log.warning("link events overran (%s): looking at every port", e)


def run(host: str, store_url: str, uplink: str = "up0", metrics: ProxyMetrics | None = None, ca: str = "") -> None:
    """The loop. A VM's port appearing costs no store read and no nftables call before its
    EAPOL-Start: the records come from a copy kept fresh by a thread (proxy_records.py), and the
    guard already names the port (`guard`). The order is still guard, then EAPOL-Start, every
    time: when a record arrives for a port already there, its rules are swapped in first (≈ 0.5 ms
    in-process). Sending EAPOL-Start first would open nothing by itself — it is the VM's own MAC
    asking, and the switch drops that MAC's frames until EAP-Success — but what the guard stops
    (another VM's MAC forged from this port, frames across VNs on this host's bridge) needs no
    authorization at all, only a port that forwards; so the guard must come before the VM can
    send, which is when its port exists, not when its EAPOL-Start goes."""
    metrics = metrics or ProxyMetrics()
    records = ProxyRecords(open_store(store_url), host).start()
    stop_r, stop_w = os.pipe()
    stopping = stop_on_signals(also=lambda: os.write(stop_w, b"!"))  # wakes the select below at once
    sock = packet_socket(eapol=True, nvo3=False)
    sock.bind((uplink, 0))
    events = link_events()
    proxy, up, next_scan, guarded = Proxy(peer_for=lambda c: TesPeer(c, ca)), set(), 0.0, None

    def emit(out: list[Emit]) -> None:
        for e in out:
            sock.send(eapol.frame(e.dst, e.src, e.frame))
            if e.frame.type == eapol.EapolType.START:
                metrics.starts.inc()
                trace("start", e.src)
            elif e.frame.type == eapol.EapolType.LOGOFF:
                metrics.logoffs.inc()
            log.info("%s for %s", e.frame.type.name if e.frame.type != eapol.EapolType.EAP else "EAP", e.src)

    while not stopping.is_set():
        now = time.monotonic()
        if now >= next_scan:
            current = records.current  # one reference: this scan sees one version of the records
            wanted = guard(current)
            if wanted != guarded and apply_guard(wanted):  # only when the records changed; a failure: next scan
                guarded = wanted
            present = set(os.listdir("/sys/class/net"))
            for port, r in current.items():
                if port in present and r.mac not in up:
                    up.add(r.mac)
                    emit(proxy.vm_up(now, r.mac, r.creds))
            for mac in list(up):
                if not any(r.mac == mac and p in present for p, r in current.items()):
                    up.discard(mac)
                    emit(proxy.vm_down(mac))  # removed, or migrated away: logoff on its behalf
            next_scan = now + SCAN
        ready, _, _ = select.select([sock, events, records.wake, stop_r], [], [], max(0.0, next_scan - time.monotonic()))
        if events in ready:
            trace("wake", "-")
            drain(events)
            next_scan = 0.0  # a port came or went: look now
        if records.wake in ready:
            records.drain()
            next_scan = 0.0  # the published VM ports changed: guard and vouch now
        if sock in ready:
            data = sock.recv(65535)  # a whole frame at any MTU (a short buffer truncates it silently);
            # incoming only: the socket filter drops what we send
            try:
                dst, src, f = eapol.unframe(data)
            except DecodeError as e:
                log.warning("malformed EAPOL on %s: %s", uplink, e)
                continue
            was = proxy.vms.get(dst)
            emit(proxy.on_eapol(time.monotonic(), dst, src, f))
            vm = proxy.vms.get(dst)
            if vm is not None and was is not None and vm.state != was.state and vm.state in ("authorized", "held"):
                metrics.authorizations.labels("success" if vm.state == "authorized" else "failure").inc()
            if tracing.ON and vm and vm.state == "authorized" and vm != was:
                trace("success", dst)
        emit(proxy.tick(time.monotonic()))
        metrics.authorized.set(sum(1 for vm in proxy.vms.values() if vm.state == "authorized"))
    # no logoff on the way out: the VMs are still there, and a restarted proxy just asks again;
    # the records' thread is a daemon and ends with the process (no wait for its watch)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="tenet-proxy", description="802.1X on behalf of this host's VMs")
    p.add_argument("--host", required=True)
    p.add_argument("--store", required=True)
    p.add_argument("--uplink", default="up0")
    p.add_argument("--ca", default="", metavar="FILE",
                   help="the RADIUS servers' CA (PEM): VMs with method peap or ttls check the server against it")
    p.add_argument("--metrics", metavar="ADDR:PORT", default="",
                   help="serve Prometheus metrics at http://ADDR:PORT/metrics (docs/metrics.md)")
    a = p.parse_args(argv)
    metrics = ProxyMetrics()
    serve_option(p, metrics.registry, a.metrics)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s[%(process)d] %(message)s")
    if a.ca and not os.access(a.ca, os.R_OK):
        p.error(f"--ca {a.ca}: not a readable file")
    run(a.host, a.store, a.uplink, metrics, a.ca)


if __name__ == "__main__":
    main()
