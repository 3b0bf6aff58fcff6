"""Pacing for level-triggered loops: react at once after a quiet spell, but under a burst of
changes leave a gap after each pass — at least `interval`, and at least `ratio` times the CPU
time the pass itself used, so a loop never burns more than 1/(1+ratio) of a core catching up
with churn (time a pass spends waiting on the kernel, e.g. an RCU grace period when a bridge
goes, earns no gap). Each
pass reads the latest state, so coalescing loses nothing: N changes cost a few passes, not N.
"""
from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    def __init__(self, interval: float, ratio: float = 1.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, cpu: Callable[[], float] = time.thread_time) -> None:
        self.interval, self.ratio, self.clock, self.sleep, self.cpu = interval, ratio, clock, sleep, cpu
        self.ended = float("-inf")
        self.cpu_started = self.cpu_used = 0.0

    def pace(self) -> float:
        """Call before a pass: waits out the gap the previous pass earned; returns the wait."""
        delay = self.ended + max(self.interval, self.ratio * self.cpu_used) - self.clock()
        if delay > 0:
            self.sleep(delay)
        self.cpu_started = self.cpu()
        return max(delay, 0.0)

    def done(self) -> None:
        """Call after the pass."""
        self.ended = self.clock()
        self.cpu_used = self.cpu() - self.cpu_started
