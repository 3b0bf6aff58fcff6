"""The reachability result as text a person reads in an 80-column terminal, without scrolling
sideways however many VMs there are: one small matrix per VN (its own NICs, where every probe
must be answered) and one VN-by-VN grid of the cross-VN probes (where none may leak). Pure.
"""
from __future__ import annotations

from dataclasses import dataclass

from tenet.lab.reach import Probe, Reachability

WIDTH = 80
LEGEND = (
    "✓ answered by the right NIC · ✗ FAILED · = same address, not probed",
    "∅ no cross-VN echo answered · ↺ answered on the prober's own VN (a VM in both)",
)


@dataclass(frozen=True)
class Line:
    text: str
    style: str = ""  # a rich style for the whole line ("" plain)


def _fit(label: str, width: int) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def _same_vn_cell(p: Probe | None) -> str:
    if p is None:
        return "="
    return "✓" if p.answered and p.answer_mac == p.dst.mac else "✗"


def _cross_vn_cell(result: Reachability, probes: list[Probe]) -> str:
    if not probes:
        return ""
    if any(p.answered and not result.owns(p, p.answer_mac) for p in probes):
        return "✗"
    return "↺" if any(p.answered for p in probes) else "∅"


def _grid(title: str, rows: list[str], cols: list[str], cell, width: int) -> list[Line]:
    """A matrix with row labels and one-character cells. Columns are headed by their labels
    when those fit, else by numbers keyed to the rows (1 = the first row's label...)."""
    label_w = min(max((len(r) for r in rows), default=1), 12)
    cw = max((len(c) for c in cols), default=1)
    numbered = label_w + 1 + len(cols) * (cw + 1) > width
    if numbered:
        cw = len(str(len(cols)))
        keyed = [f"{i + 1:>{cw}} {_fit(r, label_w)}" for i, r in enumerate(rows)]
        heads = [str(i + 1) for i in range(len(cols))]
        label_w += cw + 1
    else:
        keyed, heads = [_fit(r, label_w) for r in rows], cols
    if label_w + 1 + len(cols) * (cw + 1) > width:  # too many even numbered: one line per row
        out = [Line(title)]
        for r, k in zip(rows, keyed):
            cells = [cell(r, c) for c in cols]
            bad = sum(1 for x in cells if x == "✗")
            out.append(Line(f"  {k:<{label_w}} {len(cells) - bad - cells.count('')} of {len(cells) - cells.count('')} as expected",
                            "red" if bad else ""))
        return out
    out = [Line(title), Line(" " * (label_w + 1) + " ".join(f"{h:^{cw}}" for h in heads), "dim")]
    for r, k in zip(rows, keyed):
        cells = [(" " if r == c else cell(r, c)) or " " for c in cols]
        out.append(Line(f"{k:<{label_w}} " + " ".join(f"{x:^{cw}}" for x in cells), "red" if "✗" in cells else ""))
    return out


def render(result: Reachability, width: int = WIDTH) -> list[Line]:
    """Per VN: its NICs pinging each other. Then VN by VN: what happened to cross-VN probes."""
    vns = sorted({n.vn for n in result.nics})
    same = {(p.src.label, p.dst.label): p for p in result.probes if p.src.vn == p.dst.vn}
    out: list[Line] = []
    for vn in vns:
        labels = [n.label for n in result.nics if n.vn == vn]
        out += _grid(f"{vn}: from (row) to (column)", labels, labels,
                     lambda s, d: _same_vn_cell(same.get((s, d))), width)
    cross: dict[tuple[str, str], list[Probe]] = {}
    for p in result.probes:
        if p.src.vn != p.dst.vn:
            cross.setdefault((p.src.vn, p.dst.vn), []).append(p)
    out += _grid("cross-VN probes: from VN (row) to VN (column)", vns, vns,
                 lambda s, d: _cross_vn_cell(result, cross.get((s, d), [])), width)
    return out
