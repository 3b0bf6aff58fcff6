"""Every message the `tenet` command prints appears exactly as written: rules such as
`[a-z0-9][a-z0-9-]{0,11}` and values in square brackets are text, never Rich markup. The
command runs as an operator runs it (its entry point in a process of its own), on files that
fail validation, so nothing is ever built."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import typer

import tenet
from rich.text import Text

from tenet.cli.main import app

SRC = str(Path(tenet.__file__).resolve().parents[1])  # the sources this test imports
BAD = """
name: Bad_Name
underlay:
  networks:
    pn1: {subnet: "[bold]198.18.1.0/24"}
    pn2: {subnet: 198.18.2.0/24}
hosts:
  h1: {network: pn2, role: "[red]toaster[/red]"}
  h2: {network: pn1}
networks:
  blue: {vnid: 0}
vms:
  a: {host: h2, network: blue}
  b: {host: h1, network: "[link=x]blue"}
"""


def tenet(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": "60", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "tenet.cli.main", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_lab_up_prints_the_problems_as_written(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD)
    r = tenet("lab", "up", str(f))
    assert r.returncode == 1, r.stderr
    assert r.stderr == (
        f"error: {f}: 5 problem(s)\n"
        "  name: required: [a-z0-9][a-z0-9-]{0,11}, not 'Bad_Name'\n"
        "  underlay.networks.pn1.subnet: not an IPv4 subnet: '[bold]198.18.1.0/24'\n"
        "  hosts.h1.role: must be one of hypervisor, access-switch, router, not '[red]toaster[/red]'\n"
        "  networks.blue.vnid: VN-ID must be an integer 1..16777215, not 0\n"
        "  vms.b.network: no virtual network named '[link=x]blue'\n"
    ), r.stderr  # one problem per rejected item: none for h2 (on pn1), vm a (on blue) or vm b's host h1


def test_store_rbac_prints_a_fabric_problem_as_written(tmp_path):
    f = tmp_path / "fabric.yaml"
    f.write_text("name: ok\nunderlay:\n  networks:\n    pn1: {subnet: 198.18.1.0/24}\n"
                 "hosts:\n  h1: {network: pn1, uplink: \"[i]eth0[/i] too long a name\"}\n")
    r = tenet("store", "rbac", "--fabric", str(f), "--print")
    assert r.returncode == 1
    assert ("hosts.h1.uplink: must be an interface name of 1..15 characters, not '[i]eth0[/i] too long a name'"
            in r.stderr), r.stderr


def test_every_help_text_is_the_same_read_as_markup():
    """typer renders help through Rich markup: ours must read the same either way."""
    def walk(cmd: click.Command, path: str):
        yield path, cmd.help or ""
        for p in cmd.params:
            yield f"{path} {p.name}", getattr(p, "help", None) or ""
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from walk(sub, f"{path} {name}")

    texts = list(walk(typer.main.get_command(app), "tenet"))
    assert len(texts) > 50
    changed = [(where, text) for where, text in texts if Text.from_markup(text).plain != text]
    assert changed == []
