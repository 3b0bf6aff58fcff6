"""NVO3 discovery codec: golden bytes, strict errors with offsets, fuzzed never-crash."""
from __future__ import annotations

from ipaddress import IPv4Address, IPv4Interface

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenet.wire.discovery import (
    DecodeError,
    Message,
    MsgType,
    NveType,
    Qos,
    Reason,
    ReasonCode,
    Tlv,
    TlvType,
    AccessTunnel,
    decode,
    encode,
    frame,
    unframe,
)

GOLDEN = [
    (  # DISCOVER for VN "n1", host-uniq 0xabcd
        Message(MsgType.DISCOVER, 0, 0, (Tlv(TlvType.VN_NAME, "n1"), Tlv(TlvType.HOST_UNIQ, b"\xab\xcd"))),
        "10 01 0018 00000000 000000 00" "0001 0002 6e31" "000a 0002 abcd",
    ),
    (  # OFFER from an access switch, capability 200, MAC and IP
        Message(MsgType.OFFER, 0, 5001, (
            Tlv(TlvType.NVE_TYPE, NveType.ACCESS_SWITCH), Tlv(TlvType.NVE_CAPABILITY, 200),
            Tlv(TlvType.NVE_MAC, "02:00:00:00:00:01"), Tlv(TlvType.NVE_IP, IPv4Address("198.18.1.10")))),
        "10 02 002b 00000000 001389 00" "0002 0001 02" "0003 0004 000000c8" "0004 0006 020000000001" "0005 0004 c612010a",
    ),
    (  # CONFIRM with session id 0xdeadbeef
        Message(MsgType.CONFIRM, 0xDEADBEEF, 5001, ()),
        "10 04 000c deadbeef 001389 00",
    ),
    (  # AUTH_RESULT success, VLAN 100, 50 Mbit/s class 3, session timeout 3600
        Message(MsgType.AUTH_RESULT, 7, 5001, (
            Tlv(TlvType.AUTH_STATUS, 0), Tlv(TlvType.VLAN, 100), Tlv(TlvType.QOS, Qos(50_000_000, 3)),
            Tlv(TlvType.SESSION_TIMEOUT, 3600), Tlv(TlvType.TES_IP, IPv4Interface("10.1.0.9/24")))),
        "10 06 0035 00000007 001389 00" "000d 0001 00" "0007 0002 0064" "0008 0009 0000000002faf080 03"
        "000e 0004 00000e10" "0006 0005 0a010009 18",
    ),
    (  # TERMINATE, reason keepalive-timeout "x"
        Message(MsgType.TERMINATE, 7, 5001, (Tlv(TlvType.REASON, Reason(ReasonCode.KEEPALIVE_TIMEOUT, "x")),)),
        "10 09 0012 00000007 001389 00" "000b 0002 0278",
    ),
    (  # AUTH_RESULT over the L3 transport: access tunnel VNI 0x1c36e0 on UDP 4790
        Message(MsgType.AUTH_RESULT, 7, 5001, (Tlv(TlvType.AUTH_STATUS, 0), Tlv(TlvType.ACCESS_TUNNEL, AccessTunnel(0x1C36E0, 4790)))),
        "10 06 001b 00000007 001389 00" "000d 0001 00" "0012 0006 001c36e0 12b6",
    ),
    (  # an unknown TLV (type 999) travels unchanged
        Message(MsgType.HELLO, 7, 5001, (Tlv(999, b"\x01\x02\x03"),)),
        "10 07 0013 00000007 001389 00" "03e7 0003 010203",
    ),
]


@pytest.mark.parametrize("msg, hexdump", GOLDEN)
def test_golden_bytes(msg, hexdump):
    wire = bytes.fromhex(hexdump.replace(" ", ""))
    assert encode(msg) == wire
    assert decode(wire) == msg


@pytest.mark.parametrize(
    "hexdump, offset, fragment",
    [
        ("1001", 0, "shorter than the 12-byte header"),
        ("2001000c0000000000000000", 0, "version 2"),
        ("10ff000c0000000000000000", 1, "unknown message type 255"),
        ("1001000b0000000000000000", 2, "length 11"),
        ("100100200000000000000000", 2, "length 32"),
        ("1001000f000000000000000000010002", 12, "truncated TLV header"),
        ("10010012000000000000000000010009ffff", 12, "overruns"),
        ("100100110000000000000000000200010900", 16, "NVE_TYPE"),
        ("10010012000000000000000000070002 0000", 16, "VLAN"),
        ("1001000f000000000000000000010000", 12, "truncated TLV header"),
        ("100100100000000000000000000100 00", 16, "VN_NAME"),
    ],
)
def test_malformed_input_names_its_offset(hexdump, offset, fragment):
    with pytest.raises(DecodeError) as e:
        decode(bytes.fromhex(hexdump.replace(" ", "")))
    assert e.value.offset == offset and fragment in str(e.value), str(e.value)


def test_ethernet_padding_is_ignored_and_ethertype_checked():
    m = GOLDEN[2][0]
    f = frame("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:02", m)
    assert len(f) == 60 and f[12:14] == b"\x88\xb5"
    assert unframe(f) == ("ff:ff:ff:ff:ff:ff", "02:00:00:00:00:02", 0x88B5, m)
    hello = frame("02:00:00:00:00:01", "02:00:00:00:00:02", Message(MsgType.HELLO, 1, 1))
    assert hello[12:14] == b"\x88\xb6"
    with pytest.raises(DecodeError, match="must not travel"):
        unframe(f[:12] + b"\x88\xb6" + f[14:])
    with pytest.raises(DecodeError, match="not tenet's"):
        unframe(f[:12] + b"\x08\x00" + f[14:])


def test_encode_validates_fields():
    with pytest.raises(ValueError, match="vnid"):
        encode(Message(MsgType.HELLO, 1, 1 << 24))
    with pytest.raises(ValueError, match="VLAN"):
        encode(Message(MsgType.AUTH_RESULT, 1, 1, (Tlv(TlvType.VLAN, 5000),)))
    with pytest.raises(ValueError, match="NVE_MAC"):
        encode(Message(MsgType.OFFER, 0, 1, (Tlv(TlvType.NVE_MAC, "nope"),)))


tlvs = st.one_of(
    st.builds(Tlv, st.just(TlvType.VN_NAME), st.text(min_size=1, max_size=20).filter(lambda s: len(s.encode()) <= 255)),
    st.builds(Tlv, st.just(TlvType.NVE_TYPE), st.sampled_from(list(NveType))),
    st.builds(Tlv, st.just(TlvType.NVE_CAPABILITY), st.integers(0, 2**32 - 1)),
    st.builds(Tlv, st.just(TlvType.NVE_MAC), st.binary(min_size=6, max_size=6).map(lambda b: ":".join(f"{x:02x}" for x in b))),
    st.builds(Tlv, st.just(TlvType.VLAN), st.integers(1, 4094)),
    st.builds(Tlv, st.just(TlvType.QOS), st.builds(Qos, st.integers(0, 2**64 - 1), st.integers(0, 7))),
    st.builds(Tlv, st.just(TlvType.HOST_UNIQ), st.binary(min_size=1, max_size=64)),
    st.builds(Tlv, st.just(TlvType.REASON), st.builds(Reason, st.sampled_from(list(ReasonCode)), st.text(max_size=10))),
    st.builds(Tlv, st.just(TlvType.ACCESS_TUNNEL), st.builds(AccessTunnel, st.integers(1, 2**24 - 1), st.integers(1, 65535))),
    st.builds(Tlv, st.just(TlvType.RATE_UP), st.integers(1, 2**64 - 1)),
    st.builds(Tlv, st.integers(100, 65535), st.binary(max_size=20)),
)
messages = st.builds(Message, st.sampled_from(list(MsgType)), st.integers(0, 2**32 - 1), st.integers(0, 2**24 - 1),
                     st.lists(tlvs, max_size=6).map(tuple))


def test_the_up_rate_is_a_tlv_of_its_own_that_older_peers_keep_raw():
    """QOS stays 9 bytes (the down rate and the CoS); RATE_UP (19) is 8 bytes of bit/s. A peer
    that predates it decodes an unknown TLV, which it keeps raw: the AUTH_RESULT still parses."""
    msg = Message(MsgType.AUTH_RESULT, 1, 6001, (Tlv(TlvType.QOS, Qos(50_000_000, 0)), Tlv(TlvType.RATE_UP, 20_000_000)))
    wire = encode(msg)
    assert wire.endswith(bytes.fromhex("0013 0008") + (20_000_000).to_bytes(8, "big"))
    assert decode(wire).get(TlvType.RATE_UP) == 20_000_000 and decode(wire).get(TlvType.QOS) == Qos(50_000_000, 0)
    with pytest.raises(ValueError, match="not in 1"):
        encode(Message(MsgType.AUTH_RESULT, 1, 6001, (Tlv(TlvType.RATE_UP, 0),)))


@settings(max_examples=300, deadline=None)
@given(messages)
def test_round_trip(msg):
    assert decode(encode(msg)) == msg
    assert encode(decode(encode(msg) + b"\0" * 7)) == encode(msg)  # padding ignored


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_only_raise_decode_error(data):
    try:
        decode(data)
    except DecodeError:
        pass


@settings(max_examples=500, deadline=None)
@given(messages, st.data())
def test_mutated_messages_only_raise_decode_error(msg, data):
    wire = bytearray(encode(msg))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "grow"]))
        if op == "flip" and wire:
            i = data.draw(st.integers(0, len(wire) - 1))
            wire[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            wire = wire[: data.draw(st.integers(0, len(wire)))]
        else:
            wire += data.draw(st.binary(min_size=1, max_size=8))
    try:
        decode(bytes(wire))
    except DecodeError:
        pass
