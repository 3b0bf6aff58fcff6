"""A short run of bench/fuzz.py in the suite: every decoder of untrusted input, a few
thousand inputs each, no crash (an exception its API does not document) and no hang. The
recorded long run (10^6 per target) is in docs/benchmarks.md."""
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))

from fuzzing.run import Target, run  # noqa: E402
from fuzzing.targets import all_targets  # noqa: E402

TARGETS = all_targets()
INPUTS = {"topology": 1500, "config": 1500}  # the loaders cost ~0.5 ms an input, the codecs ~30 µs
DEFAULT = 3000


@pytest.mark.parametrize("target", TARGETS, ids=lambda t: t.name)
def test_no_crash_and_no_hang(target):
    r = run(target, INPUTS.get(target.name, DEFAULT), seed=1)
    assert (r.crashes, r.hangs) == (0, 0), "\n".join(f"{f.kind}: {f.outcome}: {f.message}\n  {f.data[:300]!r}"
                                                     for f in r.findings)
    assert r.inputs == INPUTS.get(target.name, DEFAULT) and len(r.outcomes) >= 2  # inputs both decode and fail


def test_the_harness_counts_an_undocumented_exception_as_a_crash_and_a_slow_input_as_a_hang():
    slept = []

    def decode(x: bytes) -> None:
        if x[:1] == b"\x00":
            raise KeyError("planted")
        if x[:1] == b"\x01" and not slept:  # one slow input is enough
            slept.append(time.sleep(1.05))
        raise ValueError("documented")

    t = Target("planted", (b"\x02",), lambda rng, x, other: bytes([rng.randrange(40)]), decode, (ValueError,))
    r = run(t, 200, seed=3)
    assert r.crashes > 0 and r.hangs > 0
    assert {f.outcome for f in r.findings} >= {"KeyError", "ValueError"}
    assert run(t, 200, seed=3).outcomes == r.outcomes  # deterministic for a seed
