"""EAP-TLS and PEAP-MSCHAPv2 through tenet's access switch against FreeRADIUS driven directly,
same methods, same run.

    .venv/bin/python bench/eap.py [--rounds 30] [--burst 16]

Lab bench/eap.yaml: access switch tor1 and hypervisor h1 on one network, host hb behind tor1,
the lab's FreeRADIUS. The bench cables supplicant ports into hb's bridge (veth pairs it creates
inside hb's namespace and deletes by the names it recorded), each with its own MAC.

- Through the NVE: a real `wpa_supplicant -D wired` on a supplicant port; its EAPOL goes through
  hb's bridge to tor1, whose authenticator relays EAP to FreeRADIUS. Baseline: `eapol_test`
  (hostapd's RADIUS/EAP test client: the same EAP peer code as wpa_supplicant, speaking RADIUS
  itself) from tor1's namespace straight at FreeRADIUS, with the same method and credentials.
- Latency: from the supplicant's first EAP request (its `CTRL-EVENT-EAP-STARTED`) to EAP
  success (`CTRL-EVENT-EAP-SUCCESS`), both stamped on arrival of the supplicant's line-buffered
  output (stdbuf -oL; CLOCK_MONOTONIC), one authentication at a time, a fresh process each round.
- Admission rate: `--burst` supplicants started at once; authentications per second from the
  first supplicant's first EAP request to the last success, through the NVE and directly
  (wpa_supplicant on a wired port waits ≈ 2 s for the authenticator to speak first before its
  EAPOL-Start; started together, they all send it within milliseconds of each other). The
  direct burst has eapol_test's start-up inside its window (it starts at once), which the
  through-NVE one has not; so the direct rate is also measured without it (`direct_steady`:
  as many eapol_test processes, ten authentications each, counted while all are running).
Writes JSON to bench/results/.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from tenet.lab.lab import Lab

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from stats import summary  # noqa: E402

HOST = "hb"
STARTED, SUCCESS, FAILURE = "CTRL-EVENT-EAP-STARTED", "CTRL-EVENT-EAP-SUCCESS", "CTRL-EVENT-EAP-FAILURE"


def network(method: str, pki) -> str:
    if method == "tls":
        body = (f'  eap=TLS\n  identity="bench-tls"\n  ca_cert="{pki.ca}"\n'
                f'  client_cert="{pki.client_cert("bench-tls")}"\n  private_key="{pki.client_key("bench-tls")}"\n')
    else:
        body = (f'  eap=PEAP\n  identity="bench-peap"\n  anonymous_identity="anonymous"\n  password="bench p3ap"\n'
                f'  ca_cert="{pki.ca}"\n  phase2="auth=MSCHAPV2"\n')
    return "network={\n  key_mgmt=IEEE8021X\n" + body + "}\n"


class Run:
    """One supplicant process, its output lines stamped on arrival."""

    def __init__(self, lab: Lab, node: str, argv: list[str]) -> None:
        self.lines: list[tuple[float, str]] = []
        self.t0 = time.monotonic()
        self.proc = lab.popen(node, "stdbuf", "-oL", *argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.append((time.monotonic(), line.rstrip()))
            if SUCCESS in line or FAILURE in line:
                self.done.set()
        self.done.set()

    def at(self, event: str) -> float | None:
        return next((t for t, line in self.lines if event in line), None)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def outcome(self, timeout: float) -> tuple[float, float]:
        """(started, succeeded) or a clear failure."""
        self.done.wait(timeout)
        s, ok = self.at(STARTED), self.at(SUCCESS)
        if s is None or ok is None:
            tail = "\n".join(line for _, line in self.lines[-15:])
            raise SystemExit(f"authentication did not succeed within {timeout} s:\n{tail}")
        return s, ok


class Ports:
    """Supplicant ports in hb's bridge: veth pairs created here, deleted by recorded name. A
    bridge does not forward 802.1X's PAE group address (01:80:c2:00:00:03) unless told to: bit 3
    of its group_fwd_mask, set for the bench and cleared after. Each supplicant port is
    isolated from the others: they reach only the uplink, as each would on its own switch port."""

    def __init__(self, lab: Lab, count: int) -> None:
        self.lab, self.names = lab, []
        lab.exec(HOST, "ip", "link", "set", "br0", "type", "bridge", "group_fwd_mask", "8", check=True)
        for i in range(count):
            name, peer = f"sup{i}", f"sup{i}b"
            lab.exec(HOST, "ip", "link", "add", name, "type", "veth", "peer", "name", peer, check=True)
            self.names.append(name)
            lab.exec(HOST, "ip", "link", "set", name, "address", f"02:83:e0:00:00:{i + 16:02x}", "up", check=True)
            lab.exec(HOST, "ip", "link", "set", peer, "master", "br0", "up", check=True)
            # isolated: a supplicant takes any EAPOL frame for its authenticator's, so one must
            # not hear another's (on a real switch each has a port of its own)
            lab.exec(HOST, "ip", "link", "set", peer, "type", "bridge_slave", "isolated", "on", check=True)

    def remove(self) -> None:
        for name in self.names:
            self.lab.exec(HOST, "ip", "link", "del", name)
        self.lab.exec(HOST, "ip", "link", "set", "br0", "type", "bridge", "group_fwd_mask", "0")


def direct(lab: Lab, conf: Path, i: int, again: int = 0) -> Run:
    """eapol_test from the switch's namespace straight at FreeRADIUS (`again`: that many more
    authentications in the same process, one after another)."""
    secret = (lab.record.dir / "radius.secret").read_text().strip()
    return Run(lab, "tor1", ["eapol_test", "-c", str(conf), "-a", lab.plan.aaa[0].ip, "-s", secret, "-n", "-t", "30",
                             "-M", f"02:83:d0:00:00:{i % 256:02x}", *(["-r", str(again)] if again else [])])


def steady(lab: Lab, conf: Path, clients: int, each: int = 10) -> float:
    """Direct authentications per second with `clients` eapol_test processes each running `each`
    in a row, counted in the window where all are past their first and none done: the server's
    rate with no process start-up in it."""
    runs = [direct(lab, conf, 200 + i, each - 1) for i in range(clients)]
    try:
        for r in runs:
            r.proc.wait(120)
    finally:
        for r in runs:
            r.stop()
    done = [[t for t, line in r.lines if SUCCESS in line] for r in runs]
    if any(len(d) < each for d in done):
        raise SystemExit("an eapol_test run did not complete its authentications")
    start, end = max(d[0] for d in done), min(d[-1] for d in done)
    inside = sum(1 for d in done for t in d if start < t <= end)
    return round(inside / (end - start), 1)


def latency(lab: Lab, method: str, conf: Path, ctl: Path, ports: list[str], rounds: int) -> dict:
    nve, radius = [], []
    for r in range(rounds):
        run = Run(lab, HOST, ["wpa_supplicant", "-D", "wired", "-i", ports[r % len(ports)], "-c", str(conf), "-C", str(ctl)])
        try:
            s, ok = run.outcome(30)
        finally:
            run.stop()  # wpa_supplicant says EAPOL-Logoff on its way out: the switch ends the session
        nve.append((ok - s) * 1e3)
        run = direct(lab, conf, r)
        try:
            s, ok = run.outcome(30)
        finally:
            run.stop()
        radius.append((ok - s) * 1e3)
        time.sleep(0.2)  # the logoff's deauthorization settles before the next round
    return {"through_nve_ms": summary(nve), "direct_ms": summary(radius), "ratio_p50": round(
        summary(nve)["p50"] / summary(radius)["p50"], 2)}


def rate(lab: Lab, method: str, conf: Path, ctl: Path, ports: list[str]) -> dict:
    out = {}
    for kind in ("through_nve", "direct"):
        if kind == "through_nve":
            runs = [Run(lab, HOST, ["wpa_supplicant", "-D", "wired", "-i", p, "-c", str(conf), "-C", f"{ctl}-{p}"])
                    for p in ports]
        else:
            runs = [direct(lab, conf, 100 + i) for i in range(len(ports))]
        try:
            spans = [r.outcome(60) for r in runs]
        finally:
            for r in runs:
                r.stop()
        out[kind] = round(len(runs) / (max(e for _, e in spans) - min(s for s, _ in spans)), 1)
        time.sleep(1.0)
    out["ratio"] = round(out["through_nve"] / out["direct"], 2)
    out["direct_steady"] = steady(lab, conf, len(ports))
    out["ratio_to_steady"] = round(out["through_nve"] / out["direct_steady"], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--burst", type=int, default=16)
    a = ap.parse_args()
    result: dict = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "code": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                           cwd=HERE).stdout.strip(),
                    "rounds": a.rounds, "burst": a.burst}
    with Lab.load(HERE / "eap.yaml") as lab, tempfile.TemporaryDirectory(prefix="tenet-eap-bench-") as tmp:
        ports = Ports(lab, max(a.burst, 4))
        try:
            for method in ("tls", "peap"):
                conf = Path(tmp) / f"{method}.conf"
                conf.write_text(network(method, lab.eap_pki))
                ctl = Path(tmp) / f"ctl-{method}"
                result[method] = {"latency": latency(lab, method, conf, ctl, ports.names[:4], a.rounds),
                                  "rate_per_s": rate(lab, method, conf, ctl, ports.names[:a.burst])}
                print(method, json.dumps(result[method]), flush=True)
        finally:
            ports.remove()
    out = HERE / "results" / f"eap-{result['when'].replace(':', '')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
