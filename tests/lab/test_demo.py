"""`make demo`'s own checks (tenet.lab.demo, the code examples/demo.py runs) on the same
datacenter: CI fails whenever the demo would."""
from __future__ import annotations

from pathlib import Path

from tenet.lab.demo import check
from tenet.lab.lab import Lab
from tenet.lab.reach_view import WIDTH, render

TOPOLOGY = Path(__file__).parents[2] / "examples" / "datacenter.yaml"


def test_the_demo_passes():
    with Lab.load(TOPOLOGY) as lab:
        result = check(lab)
    assert result.failures == []
    nics = {n.label for n in result.reach.nics}
    assert {"vr508.0", "vr508.1"} <= nics  # a router's two NICs are judged on their own
    assert len(nics) == sum(len(v.nics) for v in lab.intent.vms)
    assert max(len(line.text) for line in render(result.reach)) <= WIDTH
