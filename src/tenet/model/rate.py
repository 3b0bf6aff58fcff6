"""Rates as tc writes them ('50mbit', decimal units): one parser for the topology, RADIUS
replies and the benchmarks."""
from __future__ import annotations

import re

RATE = re.compile(r"^[1-9][0-9]*(k|m|g)?bit$")
UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}


def parse_rate(text: str) -> int:
    """'50mbit' -> 50000000; anything else is a ValueError naming it."""
    if not isinstance(text, str) or not RATE.match(text):
        raise ValueError(f"not a rate like 50mbit: {text!r}")
    digits = text[:-3].rstrip("kmg")
    return int(digits) * UNITS[text[len(digits):-3]]
