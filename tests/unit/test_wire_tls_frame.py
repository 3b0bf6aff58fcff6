"""EAP-TLS framing (RFC 5216 §3.1): flags, length, fragments and their reassembly."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tenet.wire import tls_frame as t
from tenet.wire.errors import DecodeError


def test_golden_start_ack_and_length():
    assert t.decode(b"\x20") == t.TlsFrame(t.FLAG_S)
    assert t.decode(b"\x21").version == 1 and t.decode(b"\x21").start  # a PEAPv1 Start
    assert t.ack() == b"\x00" and t.decode(t.ack()).is_ack
    f = t.decode(bytes.fromhex("c0000007d0") + b"abc")
    assert (f.flags, f.length, f.data, f.more) == (t.FLAG_L | t.FLAG_M, 2000, b"abc", True)
    assert t.encode(f) == bytes.fromhex("c0000007d0") + b"abc"


@pytest.mark.parametrize("hexdump, fragment", [("", "flags byte"), ("08", "reserved"), ("80000001", "4-byte"),
                                               ("80ffffffff", "exceeds")])
def test_malformed(hexdump, fragment):
    with pytest.raises(DecodeError, match=fragment):
        t.decode(bytes.fromhex(hexdump))


def test_a_message_that_fits_goes_whole_without_length():
    assert t.fragments(b"hello", 10) == (b"\x00hello",)


def test_fragments_carry_length_first_and_more_on_all_but_the_last():
    frags = [t.decode(f) for f in t.fragments(bytes(range(250)), 100, version=0)]
    assert [f.flags for f in frags] == [t.FLAG_L | t.FLAG_M, t.FLAG_M, 0]
    assert [f.length for f in frags] == [250, None, None] and [len(f.data) for f in frags] == [100, 100, 50]


@given(st.binary(min_size=0, max_size=5000), st.integers(1, 1400), st.integers(0, 7))
def test_reassembly_inverts_fragmentation(message, size, version):
    r = t.Reassembly()
    for b in t.fragments(message, size, version):
        f = t.decode(b)
        assert f.version == version
        r = r.add(f)
    assert r.complete and r.data == message


def test_reassembly_refuses_what_does_not_add_up():
    first = t.TlsFrame(t.FLAG_L | t.FLAG_M, 0, 10, b"12345")
    r = t.Reassembly().add(first)
    with pytest.raises(DecodeError, match="not the 10 announced"):
        r.add(t.TlsFrame(0, 0, None, b"123"))
    with pytest.raises(DecodeError, match="more than the 10"):
        r.add(t.TlsFrame(t.FLAG_M, 0, None, b"123456"))
    with pytest.raises(DecodeError, match="changed from 10 to 11"):
        r.add(t.TlsFrame(t.FLAG_L | t.FLAG_M, 0, 11, b"1"))
    # an L on every fragment, as some servers send, is fine when it agrees
    assert r.add(t.TlsFrame(t.FLAG_L, 0, 10, b"67890")).data == b"1234567890"


def test_reassembly_is_bounded_without_a_length():
    r = t.Reassembly()
    chunk = t.TlsFrame(t.FLAG_M, 0, None, bytes(16384))
    for _ in range(4):
        r = r.add(chunk)
    with pytest.raises(DecodeError, match="more than the 65536"):
        r.add(chunk)


@given(st.binary(max_size=40))
def test_random_bytes_only_raise_decode_error(b):
    try:
        t.decode(b)
    except DecodeError:
        pass
