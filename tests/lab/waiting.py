"""Waiting on a lab's state in tests: poll a predicate, fail naming what never came."""
from __future__ import annotations

import time


def wait(pred, timeout: float = 10.0, what: str = "", every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
