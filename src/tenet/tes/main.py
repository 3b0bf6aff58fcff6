"""`tenet-tes`: run inside a VM or server; attach it to its VN by NVO3 discovery."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import time

from tenet.tes.client import POLICIES, AuthFailed, Config, Tes
from tenet.tes.link import PacketLink

log = logging.getLogger("tenet.tes")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tenet-tes", description="Attach this end system to its virtual network")
    p.add_argument("--iface", default="eth0")
    p.add_argument("--vn", help="VN name")
    p.add_argument("--vnid", type=int, default=0)
    p.add_argument("--identity", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--policy", choices=sorted(POLICIES), default="default")
    p.add_argument("--offer-window", type=float, default=0.02, help="seconds to collect offers")
    a = p.parse_args(argv)
    if not a.vn and not a.vnid:
        p.error("give --vn and/or --vnid")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tes = Tes(PacketLink(a.iface), Config(a.vn, a.vnid, a.identity, a.password, offer_window=a.offer_window, policy=a.policy))
    while not stopping:
        try:
            if tes.attach(lambda: stopping) is None:
                break
        except AuthFailed as e:
            log.error("authentication failed: %s; retrying in %.0fs", e, tes.cfg.fail_backoff)
            deadline = time.monotonic() + tes.cfg.fail_backoff
            while not stopping and time.monotonic() < deadline:
                time.sleep(0.1)
            continue
        why = tes.keepalive(lambda: stopping)
        log.info("session ended: %s", why)
    tes.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
