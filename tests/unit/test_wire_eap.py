"""EAP codec: golden bytes and the RFC 1994 MD5 response."""
import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenet.wire import eap
from tenet.wire.errors import DecodeError


def test_identity_response_golden():
    p = eap.identity_response(1, "alice")
    assert eap.encode(p) == bytes.fromhex("0201000a01") + b"alice"
    assert eap.decode(eap.encode(p)) == p


def test_md5_response_vector():
    challenge = bytes(range(16))
    p = eap.md5_response(2, b"wonderland", challenge)
    expected = hashlib.md5(b"\x02" + b"wonderland" + challenge).digest()
    assert eap.encode(p) == bytes([2, 2, 0, 22, 4, 16]) + expected
    assert eap.parse_md5(p) == (expected, b"")


def test_success_and_failure_are_four_bytes():
    assert eap.encode(eap.EapPacket(eap.EapCode.SUCCESS, 9, None)) == bytes.fromhex("03090004")
    with pytest.raises(DecodeError, match="4 bytes"):
        eap.decode(bytes.fromhex("0309000500"))


@pytest.mark.parametrize("hexdump, fragment", [("02", "shorter"), ("0901000401", "unknown EAP code"),
                                               ("0201000901", "length 9"), ("02010004", "without a type")])
def test_malformed(hexdump, fragment):
    with pytest.raises(DecodeError, match=fragment):
        eap.decode(bytes.fromhex(hexdump))


@given(st.binary(max_size=40))
def test_random_bytes_only_raise_decode_error(b):
    try:
        eap.decode(b)
    except DecodeError:
        pass
