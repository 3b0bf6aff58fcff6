"""The operator's RFC 5176 client against the NVE's own parser, over loopback UDP."""
from __future__ import annotations

import socket
import threading

from pyrad.dictionary import Dictionary

from tenet.aaa import dynauth_client
from tenet.aaa.dynauth import answer, parse
from tenet.aaa.radius import DICTIONARY

SECRET = b"s3cret"


def nas(ok: bool, seen: list):
    """A one-shot NAS on a free loopback port that parses with the NVE's code and ACKs or NAKs:
    (its thread, its port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))

    def serve():
        data, peer = sock.recvfrom(4096)
        req = parse(data, SECRET, Dictionary(str(DICTIONARY)))
        seen.append(req)
        sock.sendto(answer(req, ok), peer)
        sock.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return t, sock.getsockname()[1]


def test_a_coa_carries_both_rates_for_the_mac():
    seen: list = []
    t, port = nas(True, seen)
    code = dynauth_client.send("127.0.0.1", SECRET, "02:00:00:aa:bb:cc", up_bps=10_000_000, down_bps=20_000_000, port=port)
    t.join(2)
    assert not t.is_alive()
    assert code == 44
    assert seen[0].kind == "coa" and seen[0].mac == "02:00:00:aa:bb:cc"
    assert (seen[0].provisioning.rate_up_bps, seen[0].provisioning.rate_down_bps) == (10_000_000, 20_000_000)


def test_the_command_exits_1_on_a_nak_and_reads_rates_like_the_topology(tmp_path, capsys):
    (tmp_path / "secret").write_text("s3cret\n")
    seen: list = []
    t, port = nas(False, seen)
    rc = dynauth_client.main(["--nas", "127.0.0.1", "--port", str(port), "--secret-file", str(tmp_path / "secret"),
                              "--mac", "02:00:00:aa:bb:cc", "coa", "--up", "5mbit"])
    t.join(2)
    assert not t.is_alive() and rc == 1 and capsys.readouterr().out.strip() == "45"
    assert seen[0].provisioning.rate_up_bps == 5_000_000 and seen[0].provisioning.rate_down_bps is None
