"""What a RADIUS server's operator sends to an NVE (RFC 5176): a CoA-Request that changes a
session's rates, or a Disconnect-Request that ends it, for one MAC (Calling-Station-Id).

    python -m tenet.aaa.dynauth_client --nas 198.18.1.10 --secret-file radius.secret \\
        --mac 02:00:00:00:00:01 coa --up 10mbit --down 20mbit
    python -m tenet.aaa.dynauth_client ... disconnect

Prints the reply's code (44 CoA-ACK, 45 CoA-NAK, 41 Disconnect-ACK, 42 Disconnect-NAK) and
exits 0 on an ACK, 1 on a NAK, 2 when the NAS does not answer.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pyrad import packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

from tenet.aaa.radius import DICTIONARY, calling_station_id
from tenet.model.rate import parse_rate

COA_PORT = 3799
ACKS = (packet.CoAACK, packet.DisconnectACK)


def send(nas: str, secret: bytes, mac: str, *, disconnect: bool = False, up_bps: int | None = None,
         down_bps: int | None = None, timeout: float = 2.0, port: int = COA_PORT) -> int:
    """The reply's code. The MAC goes as RFC 3580's Calling-Station-Id (AA-BB-CC-DD-EE-FF)."""
    c = Client(server=nas, secret=secret, dict=Dictionary(str(DICTIONARY)), coaport=port,
               timeout=timeout, retries=1)
    code = packet.DisconnectRequest if disconnect else packet.CoARequest
    req = c.CreateCoAPacket(code=code, Calling_Station_Id=calling_station_id(mac))
    if up_bps is not None:
        req["WISPr-Bandwidth-Max-Up"] = up_bps
    if down_bps is not None:
        req["WISPr-Bandwidth-Max-Down"] = down_bps
    return c.SendPacket(req).code


def _bps(text: str) -> int:
    return int(text) if text.isdigit() else parse_rate(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nas", required=True, help="the NVE's address (its RFC 5176 port is 3799)")
    ap.add_argument("--port", type=int, default=COA_PORT)
    ap.add_argument("--secret-file", required=True, type=Path)
    ap.add_argument("--mac", required=True)
    sub = ap.add_subparsers(dest="kind", required=True)
    coa = sub.add_parser("coa", help="change the session's rates")
    coa.add_argument("--up", type=_bps, help="WISPr-Bandwidth-Max-Up: 10mbit, or bits/s")
    coa.add_argument("--down", type=_bps, help="WISPr-Bandwidth-Max-Down: 20mbit, or bits/s")
    sub.add_parser("disconnect", help="end the session")
    a = ap.parse_args(argv)
    if a.kind == "coa" and a.up is None and a.down is None:
        ap.error("coa needs --up or --down")
    try:
        code = send(a.nas, a.secret_file.read_text().strip().encode(), a.mac, disconnect=a.kind == "disconnect",
                    up_bps=getattr(a, "up", None), down_bps=getattr(a, "down", None), port=a.port)
    except Timeout:
        print(f"no answer from {a.nas}:{a.port}", file=sys.stderr)
        return 2
    print(code)
    return 0 if code in ACKS else 1


if __name__ == "__main__":
    sys.exit(main())
