"""Rates both ways: TCP throughput (iperf3) of MACs and TESs limited in each direction, against
their limits and against an unlimited MAC on the same switch port, measured in the same run.

    .venv/bin/python bench/rates.py [--seconds 3]

bench/rates.yaml: V (802.1X, rate_up 20mbit, rate_down 40mbit) and W (802.1X, unlimited) share
access switch tor1's port toward host6; T (NVO3, rate_up 30mbit, rate_down 50mbit) is on
hypervisor h1. Each figure is iperf3's received goodput and, for the limited ones, the wire
rate it implies (× 1514/1448: shapers count Ethernet frames, iperf3 payload) as a ratio to the
limit. W is measured alone and while V sends at its limit: the ratio of the two is what V's
shaping costs its neighbour on the port. Then an RFC 5176 CoA sets V's up rate to 10 Mbit/s
and V is measured again. Writes JSON to bench/results/.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tenet.lab.lab import Lab

HERE = Path(__file__).parent
WIRE = 1514 / 1448


def _listen(lab: Lab, node: str, port: int) -> subprocess.Popen:
    srv = lab.popen(node, "iperf3", "-s", "-1", "-p", str(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while f":{port}" not in lab.exec(node, "ss", "-ltn", f"sport = :{port}").stdout:
        if time.monotonic() > deadline:
            raise RuntimeError(f"iperf3 server on {node}:{port} did not start")
        time.sleep(0.05)
    return srv


def iperf(lab: Lab, client: str, server: str, ip: str, seconds: int, port: int = 5201) -> float:
    """Goodput in bit/s that `server` received from `client`."""
    srv = _listen(lab, server, port)
    try:
        r = lab.exec(client, "iperf3", "-c", ip, "-p", str(port), "-t", str(seconds), "-J", timeout=seconds + 30)
        return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
    finally:
        srv.terminate()
        srv.wait(5)


def together(lab: Lab, runs: list[tuple[str, str, str]], seconds: int) -> list[float]:
    """Several iperf3 streams at once (different ports): goodput of each."""
    servers = [_listen(lab, srv, 5201 + i) for i, (_, srv, _) in enumerate(runs)]
    try:
        clients = [lab.popen(c, "iperf3", "-c", ip, "-p", str(5201 + i), "-t", str(seconds), "-J",
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                   for i, (c, _, ip) in enumerate(runs)]
        return [json.loads(c.communicate(timeout=seconds + 30)[0])["end"]["sum_received"]["bits_per_second"]
                for c in clients]
    finally:
        for s in servers:
            s.terminate()
            s.wait(5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=3)
    args = ap.parse_args()
    t = args.seconds
    with Lab.load(HERE / "rates.yaml") as lab:
        deadline = time.monotonic() + 30
        while not {lab.mac("V"), lab.mac("W")} <= set(lab.endpoints()):
            if time.monotonic() > deadline:
                raise RuntimeError("V and W not authorized")
            time.sleep(0.2)
        lab.wait_attached("T", timeout=20)
        lab.wait_converged(20)
        s, s2 = "10.73.0.1", "10.73.0.2"
        rows = []

        def limited(what: str, limit: float, goodput: float) -> None:
            rows.append({"what": what, "limit_bps": limit, "goodput_bps": goodput,
                         "wire_bps": goodput * WIRE, "wire_to_limit": goodput * WIRE / limit})

        limited("V up (802.1X MAC -> S, translated)", 20e6, iperf(lab, "V", "S", s, t))
        limited("V down (S -> V)", 40e6, iperf(lab, "S", "V", "10.73.0.20", t))
        limited("T up (NVO3 TES -> S2, translated)", 30e6, iperf(lab, "T", "S2", s2, t))
        limited("T down (S2 -> T)", 50e6, iperf(lab, "S2", "T", "10.73.0.10", t))
        w_alone = iperf(lab, "W", "S2", s2, t)
        v_with, w_with = together(lab, [("V", "S", s), ("W", "S2", s2)], t)
        limited("V up while W sends too", 20e6, v_with)
        r = lab.exec("aaa", sys.executable, "-m", "tenet.aaa.dynauth_client", "--nas", str(lab.intent.fabric.host("tor1").ip),
                     "--secret-file", str(lab.record.dir / "radius.secret"), "--mac", lab.mac("V"), "coa", "--up", "10mbit")
        assert r.stdout.strip() == "44", (r.stdout, r.stderr)  # CoA-ACK
        deadline = time.monotonic() + 10
        while "rate 10Mbit" not in lab.exec("tor1", "tc", "class", "show", "dev", stage(lab)).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError("the CoA was not applied")
            time.sleep(0.1)
        limited("V up after a CoA to 10 Mbit/s", 10e6, iperf(lab, "V", "S", s, t))
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "seconds": t,
        "limited": rows,
        "unaffected": {"W up alone_bps": w_alone, "W up while V sends_bps": w_with, "ratio": w_with / w_alone},
    }
    out = HERE / "results" / f"rates-{datetime.now(timezone.utc):%Y-%m-%dT%H%M%S}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    print("\n| flow | limit | goodput | on the wire | wire / limit |\n|---|---|---|---|---|")
    for x in rows:
        print(f"| {x['what']} | {x['limit_bps'] / 1e6:.0f} Mbit/s | {x['goodput_bps'] / 1e6:.2f} Mbit/s"
              f" | {x['wire_bps'] / 1e6:.2f} Mbit/s | {x['wire_to_limit']:.3f} |")
    print(f"| W (same port, unlimited) alone | — | {w_alone / 1e9:.2f} Gbit/s | | |")
    print(f"| W while V sends at its limit | — | {w_with / 1e9:.2f} Gbit/s | | ratio to alone {w_with / w_alone:.2f} |")


def stage(lab: Lab) -> str:
    from tenet.agent.rates import stage_names
    from tenet.model.tenancy import switch_port_name
    return stage_names(switch_port_name("host6"))[0]


if __name__ == "__main__":
    main()
