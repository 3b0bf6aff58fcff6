"""EAPOL codec: golden bytes, strict errors with offsets, fuzzed never-crash."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tenet.wire import eap, eapol
from tenet.wire.eapol import Eapol, EapolType
from tenet.wire.errors import DecodeError

VM = "02:00:00:00:00:0a"


@pytest.mark.parametrize("f, hexdump", [
    (Eapol(EapolType.START), "02 01 0000"),
    (Eapol(EapolType.LOGOFF), "02 02 0000"),
    (eapol.of_eap(eap.identity_response(1, "vm-v")), "02 00 0009" "02 01 0009 01 766d2d76"),
    (Eapol(EapolType.EAP, bytes.fromhex("03050004"), version=3), "03 00 0004" "03 05 0004"),  # EAP-Success
])
def test_golden_bytes(f, hexdump):
    raw = bytes.fromhex(hexdump.replace(" ", ""))
    assert eapol.encode(f) == raw
    assert eapol.decode(raw) == f


def test_frame_goes_to_the_pae_group_from_the_vm_and_is_padded():
    raw = eapol.frame(eapol.PAE_GROUP, VM, Eapol(EapolType.START))
    assert len(raw) == 60 and raw[:6] == bytes.fromhex("0180c2000003") and raw[12:14] == b"\x88\x8e"
    assert eapol.unframe(raw) == (eapol.PAE_GROUP, VM, Eapol(EapolType.START))


@pytest.mark.parametrize("hexdump, offset, fragment", [
    ("0201", 0, "shorter than the 4-byte"),
    ("07010000", 0, "version 7"),
    ("02630000", 1, "unknown EAPOL packet type 99"),
    ("02000010" "02010009", 2, "overruns"),
    ("02000004" "09010004", 4, "unknown EAP code 9"),
    ("02000006" "030500040000", 2, "not the EAP packet's length"),
])
def test_malformed_input_names_its_offset(hexdump, offset, fragment):
    with pytest.raises(DecodeError) as e:
        eapol.decode(bytes.fromhex(hexdump))
    assert e.value.offset == offset and fragment in e.value.reason


def test_unframe_offsets_count_the_ethernet_header():
    raw = eapol.frame(eapol.PAE_GROUP, VM, Eapol(EapolType.START))
    with pytest.raises(DecodeError) as e:
        eapol.unframe(raw[:14] + b"\x09" + raw[15:])
    assert e.value.offset == 14
    with pytest.raises(DecodeError, match="not EAPOL"):
        eapol.unframe(raw[:12] + b"\x88\xb5" + raw[14:])


def test_encode_validates():
    with pytest.raises(ValueError, match="version"):
        eapol.encode(Eapol(EapolType.START, version=9))
    with pytest.raises(ValueError, match="no body"):
        eapol.encode(Eapol(EapolType.LOGOFF, b"x"))
    with pytest.raises(ValueError, match="carries no EAP"):
        Eapol(EapolType.START).eap


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=80))
def test_random_bytes_only_raise_decode_error(data):
    try:
        f = eapol.decode(data)
    except DecodeError:
        return
    assert eapol.decode(eapol.encode(f)) == f


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([eapol.of_eap(eap.identity_response(1, "vm-v")), Eapol(EapolType.START)]),
       st.integers(0, 40), st.integers(0, 255))
def test_mutated_frames_only_raise_decode_error(f, pos, byte):
    raw = bytearray(eapol.encode(f))
    raw[pos % len(raw)] = byte
    try:
        eapol.decode(bytes(raw))
    except DecodeError:
        pass


def test_a_start_or_logoff_with_a_body_decodes_to_one_that_encodes():
    """bench/fuzz.py found it: a v3 Start may carry TLVs; the decoded frame kept them and its
    own encoder then refused it. The body is dropped (nothing acts on it)."""
    for raw in ("03 01 0004 deadbeef", "02 02 0001 00"):
        f = eapol.decode(bytes.fromhex(raw.replace(" ", "")))
        assert f.body == b"" and eapol.decode(eapol.encode(f)) == f
