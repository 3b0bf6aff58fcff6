"""MD4 (RFC 1320 §A.5 test suite) and MS-CHAPv2 (RFC 2759 §9.2 sample data), and the
EAP-MSCHAPv2 packets of draft-kamath."""
import pytest

from tenet.tes import mschapv2 as m
from tenet.tes.md4 import md4
from tenet.wire.errors import DecodeError


@pytest.mark.parametrize("text, digest", [
    (b"", "31d6cfe0d16ae931b73c59d7e0c089c0"),
    (b"a", "bde52cb31de33e46245e05fbdbd6fb24"),
    (b"abc", "a448017aaf21d8525fc10ae87aa6729d"),
    (b"message digest", "d9130a8164549fe818874806e1c7014b"),
    (b"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"),
    (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "043f8582f241db351ce627e153e7f0e4"),
    (b"1234567890" * 8, "e33b4ddc9c38f2199c3e7b164fcc0536"),
])
def test_md4_rfc1320_suite(text, digest):
    assert md4(text).hex() == digest


def test_md4_block_boundaries():
    """55, 56 and 64 bytes: the length no longer fits the first block's padding."""
    assert md4(b"x" * 55) != md4(b"x" * 56) != md4(b"x" * 64)
    assert len({md4(b"y" * n) for n in range(50, 130)}) == 80


USER, PASSWORD = "User", "clientPass"
AUTH_CHALLENGE = bytes.fromhex("5B5D7C7D7B3F2F3E3C2C602132262628")
PEER_CHALLENGE = bytes.fromhex("21402324255E262A28295F2B3A337C7E")


def test_rfc2759_sample_data():
    assert m.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, USER).hex().upper() == "D02E4386BCE91226"
    assert m.nt_password_hash(PASSWORD).hex().upper() == "44EBBA8D5312B8D611474411F56989AE"
    assert md4(m.nt_password_hash(PASSWORD)).hex().upper() == "41C00C584BD2D91C4017A2A12FA59F3F"
    nt = m.nt_response(AUTH_CHALLENGE, PEER_CHALLENGE, USER, PASSWORD)
    assert nt.hex().upper() == "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF"
    assert m.authenticator_response(PASSWORD, nt, PEER_CHALLENGE, AUTH_CHALLENGE, USER) == \
        "S=407A5589115FD0D6209F510FE9C04566932CDA56"


def test_challenge_hash_drops_the_domain():
    assert m.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, "CORP\\User") == m.challenge_hash(PEER_CHALLENGE, AUTH_CHALLENGE, USER)


def test_des_key_spreads_56_bits_with_odd_parity():
    k = m._des_key(bytes.fromhex("ffffffffffffff"))
    assert k == bytes([0xFE] * 8)  # seven ones each: odd already, the parity bit stays 0
    assert all(bin(b).count("1") % 2 == 1 for b in m._des_key(bytes(range(7))))


def test_parse_challenge_and_build_response():
    data = bytes([1, 7, 0, 4 + 1 + 16 + 6, 16]) + AUTH_CHALLENGE + b"radius"
    c = m.parse_request(data)
    assert c == m.Challenge(7, AUTH_CHALLENGE, b"radius")
    nt = m.nt_response(c.challenge, PEER_CHALLENGE, USER, PASSWORD)
    r = m.response(c.ms_id, PEER_CHALLENGE, nt, USER)
    assert r[:5] == bytes([2, 7, 0, 4 + 1 + 49 + 4, 49])
    assert r[5:21] == PEER_CHALLENGE and r[21:29] == bytes(8) and r[29:53] == nt and r[53] == 0 and r[54:] == b"User"


def test_success_and_failure_requests():
    s = m.parse_request(bytes([3, 8, 0, 4 + 44]) + b"S=407A5589115FD0D6209F510FE9C04566932CDA56 M=")
    assert isinstance(s, m.Success) and s.authenticator == "S=407A5589115FD0D6209F510FE9C04566932CDA56"
    text = b"E=691 R=0 C=00112233445566778899aabbccddeeff V=3 M=Authentication failed, try again"
    f = m.parse_request(bytes([4, 8, 0, 4 + len(text)]) + text)
    assert isinstance(f, m.Failure) and f.error == 691
    assert f.fields["M"] == "Authentication failed, try again" and f.fields["R"] == "0"
    assert m.success_ack() == b"\x03" and m.failure_ack() == b"\x04"


@pytest.mark.parametrize("data, fragment", [(b"\x01\x00", "shorter"), (bytes([1, 0, 0, 40, 16]), "MS-Length"),
                                            (bytes([1, 0, 0, 6, 8, 0]), "16-byte"), (bytes([2, 0, 0, 4]), "opcode 2")])
def test_malformed_requests(data, fragment):
    with pytest.raises(DecodeError, match=fragment):
        m.parse_request(data)
