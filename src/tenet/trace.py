"""Port-up tracing: with TENET_TRACE=1 in its environment, a process logs each hop of a port's
way to its first packet as `trace <event> <key> <CLOCK_MONOTONIC>`. The clock is shared by all
network namespaces, so a bench lines up the hops of every process (docs/benchmarks.md)."""
from __future__ import annotations

import logging
import os
import time

ON = os.environ.get("TENET_TRACE") == "1"
log = logging.getLogger("tenet.trace")


def trace(event: str, key: str = "-") -> None:
    if ON:
        log.info("trace %s %s %.6f", event, key, time.monotonic())
