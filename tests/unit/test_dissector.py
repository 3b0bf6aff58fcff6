"""tshark decodes our frames with contrib/wireshark/tenet.lua (a pcap written from the codec)."""
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from tenet.wire import eap
from tenet.wire.discovery import Message, MsgType, NveType, Qos, Tlv, TlvType, frame

LUA = Path(__file__).parents[2] / "contrib" / "wireshark" / "tenet.lua"


def pcap(path: Path, frames: list[bytes]) -> None:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, f in enumerate(frames):
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(f), len(f)) + f
    path.write_bytes(out)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_tshark_decodes_with_the_lua_dissector(tmp_path):
    tes, nve = "02:00:00:00:00:aa", "02:00:00:00:00:01"
    frames = [
        frame("ff:ff:ff:ff:ff:ff", tes, Message(MsgType.DISCOVER, 0, 0, (Tlv(TlvType.VN_NAME, "n1"), Tlv(TlvType.HOST_UNIQ, b"u")))),
        frame(tes, nve, Message(MsgType.OFFER, 0, 6001, (Tlv(TlvType.VN_NAME, "n1"), Tlv(TlvType.NVE_TYPE, NveType.ACCESS_SWITCH)))),
        frame(nve, tes, Message(MsgType.EAP, 0xCAFE, 6001, (Tlv(TlvType.EAP_PAYLOAD, eap.encode(eap.identity_response(1, "alice"))),))),
        frame(tes, nve, Message(MsgType.AUTH_RESULT, 0xCAFE, 6001, (Tlv(TlvType.AUTH_STATUS, 0), Tlv(TlvType.QOS, Qos(50_000_000, 3))))),
    ]
    f = tmp_path / "t.pcap"
    pcap(f, frames)
    r = subprocess.run(
        ["tshark", "-X", f"lua_script:{LUA}", "-r", str(f), "-T", "fields", "-E", "separator=|",
         "-e", "tenet.type", "-e", "tenet.session", "-e", "tenet.vnid", "-e", "tenet.vn_name",
         "-e", "tenet.nve_type", "-e", "eap.identity", "-e", "tenet.qos.rate"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr
    rows = [line.split("|") for line in r.stdout.splitlines()]
    assert [row[0] for row in rows] == ["1", "2", "5", "6"]
    assert rows[0][3] == "n1" and rows[1][2] == "6001" and rows[1][4] == "2"
    assert rows[2][1] == "0x0000cafe" and rows[2][5] == "alice"
    assert rows[3][6] == "50000000"
