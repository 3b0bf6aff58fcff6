"""ARP codec and the proxy answer of an IP-based VN's NVE."""
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenet.wire import arp
from tenet.wire.errors import DecodeError

TES, GW = "02:00:00:00:00:0a", "02:67:77:00:1b:bc"
REQ = arp.Arp(arp.REQUEST, TES, IPv4Address("10.63.0.10"), "00:00:00:00:00:00", IPv4Address("10.63.0.100"))


def test_golden_request():
    raw = bytes.fromhex("0001 0800 06 04 0001 02000000000a 0a3f000a 000000000000 0a3f0064".replace(" ", ""))
    assert arp.encode(REQ) == raw and arp.decode(raw) == REQ


def test_proxy_answers_with_the_gateway_mac_for_any_address():
    rep = arp.proxy_reply(REQ, GW)
    assert rep == arp.Arp(arp.REPLY, GW, IPv4Address("10.63.0.100"), TES, IPv4Address("10.63.0.10"))
    raw = arp.frame(TES, GW, rep)
    assert len(raw) == 60 and raw[12:14] == b"\x08\x06" and arp.decode(raw[14:]) == rep


@pytest.mark.parametrize("spa, tpa", [("0.0.0.0", "10.63.0.10"), ("10.63.0.10", "10.63.0.10")])
def test_probes_and_gratuitous_arp_get_no_answer(spa, tpa):
    assert arp.proxy_reply(arp.Arp(arp.REQUEST, TES, IPv4Address(spa), "00:00:00:00:00:00", IPv4Address(tpa)), GW) is None


def test_malformed():
    with pytest.raises(DecodeError, match="shorter"):
        arp.decode(b"\x00\x01")
    with pytest.raises(DecodeError, match="not IPv4 over Ethernet"):
        arp.decode(bytes.fromhex("0006 0800 06 04 0001".replace(" ", "")) + bytes(20))


@given(st.binary(max_size=40))
def test_random_bytes_only_raise_decode_error(data):
    try:
        arp.decode(data)
    except DecodeError:
        pass
