"""The shipped systemd units start commands that exist, with options those commands take."""
import configparser
import re
import shlex
import subprocess
import sys
import tomllib
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
    assert c["Service"]["Restart"] == "always"
