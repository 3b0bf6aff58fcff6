"""Pacer: immediate after quiet, coalescing under a burst, never more than half busy."""
from tenet.pace import Pacer


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, d: float) -> None:
        self.t += d


def test_first_pass_after_quiet_is_immediate_and_a_burst_is_spaced():
    c = Clock()
    cpu = Clock()
    p = Pacer(0.01, clock=c, sleep=c.sleep, cpu=cpu)
    assert p.pace() == 0.0  # nothing before: at once
    c.t += 0.001
    p.done()
    c.t += 0.002
    assert abs(p.pace() - 0.008) < 1e-9  # a 1 ms pass, 2 ms ago: waits out the 10 ms interval
    c.t += 0.030  # a 30 ms pass that burnt 25 ms of CPU earns a 25 ms gap
    cpu.t += 0.025
    p.done()
    assert abs(p.pace() - 0.025) < 1e-9
    c.t += 0.050  # a pass that mostly waited on the kernel earns only the interval
    cpu.t += 0.002
    p.done()
    assert abs(p.pace() - 0.010) < 1e-9
    c.t += 0.001
    p.done()
    c.t += 5.0
    assert p.pace() == 0.0  # quiet again: at once


def test_credit_lets_sparse_changes_through_and_paces_only_sustained_churn():
    c, cpu = Clock(), Clock()
    p = Pacer(0.02, 2.0, burst=0.1, clock=c, sleep=c.sleep, cpu=cpu)
    for _ in range(20):  # a change every 25 ms, each pass 5 ms of CPU: never waits
        assert p.pace() == 0.0
        cpu.t += 0.005
        c.t += 0.005
        p.done()
        c.t += 0.020
    waits = []
    for _ in range(20):  # back to back: the 100 ms of credit goes, then 20 ms gaps
        waits.append(p.pace())
        cpu.t += 0.001
        c.t += 0.001
        p.done()
    assert waits[:4] == [0.0] * 4
    assert all(abs(w - 0.019) < 1e-9 for w in waits[7:])
    assert p.burst == 0.1 and p.credit < 0
