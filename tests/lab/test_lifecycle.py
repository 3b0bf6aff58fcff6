"""Lab lifecycle: bad files change nothing, labs run side by side, down leaves nothing behind."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tenet.lab.lab import Lab
from tenet.lab.netns import LabError
from tenet.lab.record import RUN_DIR, start_time
from tenet.model.errors import IntentError

TINY = """
name: {name}
underlay:
  networks: {{pn: {{subnet: {subnet}}}}}
hosts: {{h1: {{network: pn}}, h2: {{network: pn}}}}
networks: {{v: {{vnid: 9{n}01, subnet: 10.9{n}.0.0/24}}}}
vms:
  p: {{host: h1, network: v, ip: 10.9{n}.0.1/24}}
  q: {{host: h2, network: v, ip: 10.9{n}.0.2/24}}
"""


def tiny(tmp_path: Path, name: str, n: int) -> Path:
    f = tmp_path / f"{name}.yaml"
    f.write_text(TINY.format(name=name, n=n, subnet=f"198.19.{100 + n}.0/24"))
    return f


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def test_two_labs_side_by_side_and_down_leaves_nothing(tmp_path):
    before = namespaces()
    with Lab.load(tiny(tmp_path, "tside1", 1)) as one, Lab.load(tiny(tmp_path, "tside2", 2)) as two:
        assert one.exec("p", "ping", "-c2", "-W2", "10.91.0.2").returncode == 0
        assert two.exec("p", "ping", "-c2", "-W2", "10.92.0.2").returncode == 0
        procs = one.record.processes + two.record.processes
        created = set(one.record.namespaces) | set(two.record.namespaces)
        assert created and not created & before
        assert all(start_time(p.pid) == p.start_time for p in procs)
    assert namespaces() == before
    assert not any(start_time(p.pid) == p.start_time for p in procs)
    assert not (RUN_DIR / "tside1").exists() and not (RUN_DIR / "tside2").exists()


def test_broken_topology_names_the_path_and_creates_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.format(name="tbad", n=3, subnet="198.19.103.0/24").replace("{host: h2,", "{host: h9,")
                   .replace("{host: h1, network: v", '{host: h1, mac: "zz:00", network: v'))
    before = namespaces()
    with pytest.raises(IntentError) as e:
        Lab.load(bad)
    text = str(e.value)
    assert "vms.p" in text and "MAC" in text.upper()
    assert "vms.q.host" in text  # every problem is reported, not just the first
    assert namespaces() == before


def test_cli_reports_broken_file_and_exits_nonzero(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: tcli\nunderlay: {networks: {pn: {subnet: 10.0.0.0/8}}}\nhosts: {h: {network: nowhere}}\n")
    r = subprocess.run([sys.executable, "-m", "tenet.cli.main", "lab", "up", str(bad)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "hosts.h.network" in r.stderr


def test_same_lab_twice_is_refused(tmp_path):
    f = tiny(tmp_path, "ttwice", 4)
    with Lab.load(f):
        with pytest.raises(LabError, match="already up"):
            Lab.load(f).up()
