"""The shipped systemd units start commands that exist, with options those commands take."""
import configparser
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


@pytest.mark.parametrize("unit", sorted((ROOT / "contrib" / "systemd").glob("*.service")), ids=lambda p: p.name)
def test_unit_starts_a_shipped_command_with_options_it_takes(unit):
    c = configparser.ConfigParser(strict=False, interpolation=None)
    c.optionxform = str
    c.read_string(unit.read_text())
    argv = shlex.split(c["Service"]["ExecStart"])
    script = Path(argv[0]).name
    assert script in SCRIPTS, f"{unit.name}: {script} is not a console script of tenet"
    module = SCRIPTS[script].split(":")[0]
    usage = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, check=True).stdout
    for option in (a for a in argv[1:] if a.startswith("--")):
        assert re.search(rf"(^|\s){re.escape(option)}\b", usage), f"{unit.name}: {script} takes no {option}"
    # as the lab's supervisor does (lab/restart.py): a failure restarted, a start limit
    assert c["Service"]["Restart"] == "on-failure" and float(c["Service"]["RestartSec"]) > 0
    assert (c["Unit"]["StartLimitIntervalSec"], c["Unit"]["StartLimitBurst"]) == ("30", "5")


def test_the_wheel_holds_every_file_of_the_package(tmp_path):
    """docs/deploy.md installs a wheel, not a checkout: a data file the wheel lacks (the RADIUS
    dictionary) would break only there, never in an editable install."""
    tree = tmp_path / "tree"  # a copy: a build in the checkout would leave build/ and egg-info behind
    shutil.copytree(ROOT / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copy(ROOT / "pyproject.toml", tree)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path),
                        str(tree)], capture_output=True, text=True)
    if r.returncode != 0 and "No module named" in r.stderr:
        pytest.skip(f"cannot build a wheel here: {r.stderr.strip().splitlines()[-1]}")
    assert r.returncode == 0, r.stderr
    (wheel,) = tmp_path.glob("tenet-*.whl")
    with zipfile.ZipFile(wheel) as z:
        packed = set(z.namelist())
    src = ROOT / "src"
    files = {str(p.relative_to(src)) for p in (src / "tenet").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith((".pyc", ".egg-info"))}
    assert files - packed == set()
