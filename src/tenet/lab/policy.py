"""What the lab accepts beyond the model: its underlay lives in 198.18.0.0/15 (RFC 2544's
benchmarking range), so an emulated datacenter never shadows a real network this machine
reaches. A deployment accepts any underlay; only the lab refuses."""
from __future__ import annotations

from ipaddress import IPv4Network

from tenet.model.errors import IntentError, Problem
from tenet.model.tenancy import Intent

LAB_SAFE = IPv4Network("198.18.0.0/15")


def check(intent: Intent, source: str = "") -> None:
    """IntentError naming every physical network outside the lab's range."""
    problems = tuple(Problem(f"underlay.networks.{n.name}.subnet", f"{n.subnet} is not inside {LAB_SAFE} (the lab's underlay range)")
                     for n in intent.fabric.networks if not n.subnet.subnet_of(LAB_SAFE))
    if problems:
        raise IntentError(problems, source)
