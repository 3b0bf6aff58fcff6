"""Diameter AVPs as EAP-TTLS carries them (RFC 5281 §10): golden bytes, padding, vendor AVPs."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenet.wire import diameter as d
from tenet.wire.errors import DecodeError


def test_ttls_pap_golden():
    b = d.pap("alice", "wonderland")
    assert b == (bytes.fromhex("00000001 40 00000d").replace(b" ", b"") + b"alice" + b"\x00" * 3
                 + bytes.fromhex("00000002 40 000012") + b"wonderland" + b"\x00" * 2)
    assert d.decode(b) == (d.Avp(d.USER_NAME, b"alice"), d.Avp(d.USER_PASSWORD, b"wonderland"))


def test_vendor_avp_and_no_padding_after_the_last():
    b = d.encode([d.Avp(26, b"ab", mandatory=False, vendor=311)])
    assert b[4] == d.FLAG_V and int.from_bytes(b[5:8], "big") == 14 and len(b) == 16
    assert d.decode(b[:14]) == (d.Avp(26, b"ab", False, 311),)


@pytest.mark.parametrize("hexdump, fragment", [("000000", "shorter than 8"), ("0000000140000004", "length 4"),
                                               ("0000000140000020", "length 32")])
def test_malformed(hexdump, fragment):
    with pytest.raises(DecodeError, match=fragment):
        d.decode(bytes.fromhex(hexdump))


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=40), st.booleans(),
                          st.none() | st.integers(0, 2**32 - 1)), max_size=6))
def test_roundtrip(avps):
    items = tuple(d.Avp(c, v, m, vendor) for c, v, m, vendor in avps)
    assert d.decode(d.encode(items)) == items
