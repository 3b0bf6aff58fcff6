"""`tenet placement plan` as an operator reads it (cli/placement.py): the moves, the figures
before and after, the hosts left empty, what stays and why; option errors before any lab."""
from __future__ import annotations

from rich.console import Console
from typer.testing import CliRunner

from tenet.cli.main import app
from tenet.cli.placement import show
from tenet.compute.placement import plan

from test_placement import SPREAD, intent


def rendered(p) -> str:
    console = Console(record=True, width=160)
    show(p, console)
    return console.export_text()


def test_the_plan_printed():
    text = rendered(plan(intent({"h1": 3, "h2": 2, "h3": 4, "h4": 2, "h5": 1}, SPREAD), "colocate"))
    lines = [" ".join(line.replace("│", " ").split()) for line in text.splitlines()]
    assert "placement plan: colocate" in lines
    assert "1 a h1 h3 blue gathers on h3" in lines and "4 e h5 h1 red leaves h5" in lines
    assert "hosts per VN: total 5 2" in lines and "hosts per VN: max 3 1" in lines and "blue 3 1" in lines
    assert "broadcast copies per broadcast (sum over VNs) 3 0" in lines
    assert "peer pairs translated (one physical network) 1 0" in lines
    assert "peer pairs encapsulated (across a router) 3 0" in lines
    assert "hosts holding no VM, could be powered off: h2, h4, h5 (emptied by the plan: h2, h4, h5)" in lines


def test_what_stays_and_what_is_never_a_target_are_said():
    text = rendered(plan(intent({"h1": 1, "h2": 2}, {"x": ("h1", "blue"), "y": ("h1", "red")}), "drain", "h1"))
    assert "placement plan: drain h1" in text
    assert "over capacity: h1 holds 2 slots of 1" in text
    assert "never targets (no capacity declared): h3, h4, h5" in text
    text = rendered(plan(intent({"h1": 1}, {"x": ("h1", "blue")}), "drain", "h1"))
    assert "no moves" in text and "x on h1: no other hypervisor host declares a capacity" in text


def test_option_errors_come_before_any_lab():
    runner = CliRunner()
    r = runner.invoke(app, ["placement", "plan", "--goal", "drain"])
    assert r.exit_code == 1 and "--goal drain needs --host HOST" in r.output
    r = runner.invoke(app, ["placement", "plan", "--host", "h1"])
    assert r.exit_code == 1 and "--host goes with --goal drain, not colocate" in r.output
    r = runner.invoke(app, ["placement", "plan", "--goal", "pack"])
    assert r.exit_code == 2
