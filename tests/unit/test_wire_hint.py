"""Peer-hint codec: golden bytes, strict errors with offsets, encode refusals, round trips."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenet.wire import discovery, hint
from tenet.wire.errors import DecodeError
from tenet.wire.hint import Hint, HintEntry, HintKind

VM_A, VM_B = "02:00:00:00:00:0a", "02:00:00:00:00:0b"
EXT_A, EXT_B = "06:74:6e:00:00:01", "06:74:6e:00:00:02"
ANNOUNCE_A = HintEntry(HintKind.ANNOUNCE, 5001, VM_A, EXT_A)

HEAD_1 = "01 01 00000007"  # version 1, one entry, seq 7
ENTRY_A = "01 001389 02000000000a 06746e000001"  # announce, VN 5001, VM_A as EXT_A

GOLDEN = [
    (Hint(7, (ANNOUNCE_A,)), HEAD_1 + ENTRY_A),
    (  # two entries, the extremes of seq and VN-ID, a withdraw second
        Hint(0xDEADBEEF, (HintEntry(HintKind.ANNOUNCE, 0xFFFFFF, VM_B, EXT_B),
                          HintEntry(HintKind.WITHDRAW, 1, VM_A, EXT_A))),
        "01 02 deadbeef" "01 ffffff 02000000000b 06746e000002" "02 000001 02000000000a 06746e000001",
    ),
]


def _hex(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


@pytest.mark.parametrize("h, hexdump", GOLDEN)
def test_golden_bytes(h, hexdump):
    raw = _hex(hexdump)
    assert hint.encode(h) == raw
    assert hint.decode(raw) == h


def test_port_lives_with_the_other_ports_and_a_full_hint_fits_one_datagram():
    assert hint.HINT_PORT == discovery.HINT_PORT == 6769
    assert len(hint.encode(Hint(1, (ANNOUNCE_A,) * hint.HINT_MAX_ENTRIES))) == 1030


@pytest.mark.parametrize("hexdump, offset, fragment", [
    ("", 0, "0 bytes is shorter than the 6-byte header"),
    ("0101000000", 0, "5 bytes is shorter"),
    ("02 01 00000007" + ENTRY_A, 0, "version 2, expected 1"),
    ("00 01 00000007" + ENTRY_A, 0, "version 0"),
    ("01 00 00000007", 1, "count 0, expected 1..64"),
    ("01 41 00000007" + ENTRY_A * 65, 1, "count 65, expected 1..64"),
    ("01 ff 00000007", 1, "count 255"),
    (HEAD_1, 6, "entry 0 truncated: 0 of 16 bytes"),
    (HEAD_1 + ENTRY_A[:-2], 6, "entry 0 truncated: 15 of 16 bytes"),
    ("01 02 00000007" + ENTRY_A + "01 001389", 22, "entry 1 truncated: 4 of 16 bytes"),
    (HEAD_1 + ENTRY_A + "00", 22, "1 trailing bytes after 1 entries"),
    ("01 01 00000007" + ENTRY_A + ENTRY_A, 22, "16 trailing bytes"),
    (HEAD_1 + "00" + ENTRY_A[2:], 6, "entry 0: unknown kind 0"),
    (HEAD_1 + "03" + ENTRY_A[2:], 6, "entry 0: unknown kind 3"),
    (HEAD_1 + "01 000000 02000000000a 06746e000001", 7, "entry 0: VN-ID 0"),
    (HEAD_1 + "01 001389 01005e000001 06746e000001", 10, "internal multicast MAC 01:00:5e:00:00:01"),
    (HEAD_1 + "01 001389 ffffffffffff 06746e000001", 10, "internal broadcast MAC"),
    (HEAD_1 + "01 001389 000000000000 06746e000001", 10, "internal all-zero MAC"),
    (HEAD_1 + "01 001389 02000000000a 07746e000001", 16, "external multicast MAC 07:74:6e:00:00:01"),
    (HEAD_1 + "01 001389 02000000000a 000000000000", 16, "external all-zero MAC"),
    ("01 02 00000007" + ENTRY_A + "02 001389 02000000000b 333300000001", 32, "entry 1: external multicast"),
])
def test_malformed_input_names_its_offset(hexdump, offset, fragment):
    with pytest.raises(DecodeError) as e:
        hint.decode(_hex(hexdump))
    assert e.value.offset == offset and fragment in e.value.reason, (e.value.offset, e.value.reason)


def _with(**kw) -> Hint:
    fields = {"kind": HintKind.ANNOUNCE, "vnid": 5001, "internal": VM_A, "external": EXT_A} | kw
    return Hint(7, (ANNOUNCE_A, HintEntry(**fields)))


@pytest.mark.parametrize("h, fragment", [
    (Hint(-1, (ANNOUNCE_A,)), "seq -1 is not a u32"),
    (Hint(2**32, (ANNOUNCE_A,)), "is not a u32"),
    (Hint(True, (ANNOUNCE_A,)), "is not a u32"),
    (Hint(7, ()), "0 entries, expected 1..64"),
    (Hint(7, (ANNOUNCE_A,) * 65), "65 entries, expected 1..64"),
    (_with(kind=3), "entry 1: kind 3 is not announce (1) or withdraw (2)"),
    (_with(vnid=0), "entry 1: VN-ID 0 not in 1..16777215"),
    (_with(vnid=2**24), "VN-ID 16777216 not in"),
    (_with(vnid=True), "VN-ID True"),
    (_with(vnid="5001"), "VN-ID '5001'"),
    (_with(internal="02:00:00:00:00:0A"), "entry 1: internal MAC '02:00:00:00:00:0A' is not lowercase"),
    (_with(internal="02-00-00-00-00-0a"), "internal MAC '02-00-00-00-00-0a'"),
    (_with(internal="02:00:00:00:00"), "internal MAC '02:00:00:00:00'"),
    (_with(external=0x02000000000A), "external MAC 2199023255562"),
    (_with(internal="01:00:5e:00:00:01"), "entry 1: internal multicast MAC 01:00:5e:00:00:01 cannot name a NIC"),
    (_with(internal="ff:ff:ff:ff:ff:ff"), "internal broadcast MAC"),
    (_with(internal="00:00:00:00:00:00"), "internal all-zero MAC"),
    (_with(external="33:33:00:00:00:01"), "entry 1: external multicast MAC"),
    (_with(external="ff:ff:ff:ff:ff:ff"), "external broadcast MAC"),
    (_with(external="00:00:00:00:00:00"), "external all-zero MAC"),
])
def test_encode_refuses(h, fragment):
    with pytest.raises(ValueError) as e:
        hint.encode(h)
    assert fragment in str(e.value) and not isinstance(e.value, DecodeError)


def test_kind_may_be_given_as_its_number():
    assert hint.encode(_with(kind=2)) == hint.encode(_with(kind=HintKind.WITHDRAW))


UNICAST = st.tuples(st.integers(0, 255).map(lambda b: b & 0xFE), st.binary(min_size=5, max_size=5)).map(
    lambda t: (bytes([t[0]]) + t[1]).hex(":")).filter(lambda m: m != "00:00:00:00:00:00")
ENTRIES = st.builds(HintEntry, st.sampled_from(HintKind), st.integers(1, 2**24 - 1), UNICAST, UNICAST)
HINTS = st.builds(Hint, st.integers(0, 2**32 - 1),
                  st.lists(ENTRIES, min_size=1, max_size=hint.HINT_MAX_ENTRIES).map(tuple))


@settings(max_examples=300, deadline=None)
@given(HINTS)
def test_round_trip(h):
    raw = hint.encode(h)
    assert len(raw) == hint.HEADER + hint.ENTRY * len(h.entries)
    assert hint.decode(raw) == h and hint.encode(hint.decode(raw)) == raw


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes_only_raise_decode_error(data):
    try:
        h = hint.decode(data)
    except DecodeError:
        return
    assert hint.encode(h) == data


@settings(max_examples=500, deadline=None)
@given(HINTS, st.integers(0, 2000), st.integers(0, 255), st.integers(-20, 20))
def test_mutated_hints_only_raise_decode_error_or_re_encode(h, pos, byte, cut):
    raw = bytearray(hint.encode(h))
    raw[pos % len(raw)] = byte
    data = bytes(raw[:cut] if cut < 0 else raw + bytes(cut))
    try:
        got = hint.decode(data)
    except DecodeError:
        return
    assert hint.encode(got) == data
