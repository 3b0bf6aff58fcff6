"""The controller process: watch intent (and endpoints), republish on every change."""
from __future__ import annotations

import argparse
import logging
import sys
import time

from tenet.controller.hold import HOLD, Hold
from tenet.controller.liveness import GRACE, Liveness
from tenet.controller.publish import publish
from tenet.pace import Pacer
from tenet.store import keys
from tenet.store.base import follow
from tenet.store.open import open_store
from tenet.stopping import stop_on_signals

log = logging.getLogger("tenet.controller")
WATCHED = (keys.fabric(), keys.tenancy(), keys.chassis_prefix(), keys.alive_prefix(), keys.endpoints_prefix())
PACE = 0.02  # under endpoint churn, at most one recompute per 20 ms (each sees all changes so far)
BURST = 0.1  # quiet time banks up to this much pacing: changes one at a time never wait


def run(store_url: str, resync: float = 10.0, hold: float = HOLD, grace: float = GRACE) -> None:
    store = open_store(store_url)
    stopping = stop_on_signals()
    rev = store.revision() + 1
    pacer = Pacer(PACE, burst=BURST)
    held = Hold(hold)
    liveness = Liveness(grace)
    last: dict[str, int] = {}
    while not stopping.is_set():
        pacer.pace()
        try:
            generations = {h: t.generation for h, t in publish(store, held, liveness).items()}
            if generations != last:
                log.info("published %d hosts: %s", len(generations), generations)
                last = generations
        except Exception as e:  # a bad intent must not kill the controller; the last tables stay
            log.error("recompute failed, keeping published tables: %s", e)
        pacer.done()
        due = time.monotonic() + resync  # level-triggered: recompute now and then regardless
        due = min(due, held.next_due() or due, liveness.next_due() or due)  # a held VN instance goes, a host is down
        while not stopping.is_set() and time.monotonic() < due:
            rev, events = follow(store, "/tenet/", rev, timeout=max(0.0, min(due - time.monotonic(), 1.0)))
            if events is None or any(e.key.startswith(WATCHED) for e in events):
                break


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="tenet-controller")
    p.add_argument("--store", required=True)
    p.add_argument("--instance-hold", type=float, default=HOLD, metavar="SECONDS",
                   help="keep a VN instance on a host this long after its last endpoint leaves (0: remove at once)")
    p.add_argument("--down-grace", type=float, default=GRACE, metavar="SECONDS",
                   help="peers keep sending to a registered host this long after its lease lapsed (docs/agent.md)")
    a = p.parse_args(argv)
    if a.instance_hold < 0 or a.down_grace < 0:
        p.error("--instance-hold and --down-grace must be >= 0")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run(a.store, hold=a.instance_hold, grace=a.down_grace)


if __name__ == "__main__":
    main()
