"""Pacing for level-triggered loops: react at once to sparse changes, but under sustained
churn leave a gap after each pass — at least `interval`, and at least `ratio` times the CPU
time the pass itself used, so a loop never burns more than 1/(1+ratio) of a core catching up
(time a pass spends waiting on the kernel, e.g. an RCU grace period when a bridge goes, earns
no gap). Each pass reads the latest state, so coalescing loses nothing: N changes cost a few
passes, not N.

The gaps are a token bucket: quiet time earns credit up to `burst` seconds, and a pass spends
its gap from it. So changes that come one at a time — an operator re-rating a link, then
another — never wait, and only churn that outlasts the credit is paced.
"""
from __future__ import annotations

import time
from collections.abc import Callable


class Pacer:
    def __init__(self, interval: float, ratio: float = 1.0, burst: float = 0.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, cpu: Callable[[], float] = time.thread_time) -> None:
        self.interval, self.ratio, self.burst, self.clock, self.sleep, self.cpu = interval, ratio, burst, clock, sleep, cpu
        self.credit, self.stamp = burst, float("-inf")  # seconds of gap owed (< 0) or banked, as of `stamp`
        self.cpu_started = self.cpu_used = 0.0

    def pace(self) -> float:
        """Call before a pass: waits out what the credit does not cover; returns the wait."""
        now = self.clock()
        credit = min(self.burst, self.credit + (now - self.stamp))
        delay = max(-credit, 0.0)
        if delay > 0:
            self.sleep(delay)
        self.credit, self.stamp = credit + delay, now + delay
        self.cpu_started = self.cpu()
        return delay

    def done(self) -> None:
        """Call after the pass: it costs its gap."""
        now = self.clock()
        self.cpu_used = self.cpu() - self.cpu_started
        self.credit = min(self.burst, self.credit + (now - self.stamp)) - max(self.interval, self.ratio * self.cpu_used)
        self.stamp = now
