"""The peer's EAP conversation (tes/peer.py) and PEAP's inner protocol (tes/eap_peap.py),
without a server: what is answered how, what is believed, what gives up."""
from __future__ import annotations

import pytest

from tenet.lab.eap_pki import EapPki, make_ca
from tenet.tes import mschapv2
from tenet.tes.eap_peap import (
    RESULT_FAILURE, RESULT_SUCCESS, TYPE_EXTENSIONS, EapPeap, Inner, decode_inner, encode_inner, parse_result, result_tlv,
)
from tenet.tes.methods import Credentials, CredentialsError, Md5, MethodError
from tenet.tes.peer import NAMES, Peer, check
from tenet.wire import eap, tls_frame
from tenet.wire.errors import DecodeError

REQ = eap.EapCode.REQUEST


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> str:
    pki = EapPki(tmp_path_factory.mktemp("pki"))
    make_ca(pki.ca, pki.ca_key)
    return str(pki.ca)


def packet(type_: int, data: bytes = b"", ident: int = 5) -> bytes:
    return eap.encode(eap.EapPacket(REQ, ident, type_, data))


def test_identity_notification_and_nak():
    p = Peer(Credentials("alice", "pw"), (eap.TYPE_MD5,))
    assert eap.decode(p.answer(packet(eap.TYPE_IDENTITY))) == eap.identity_response(5, "alice")
    assert eap.decode(p.answer(packet(eap.TYPE_NOTIFICATION, b"hi", 6))) == eap.EapPacket(eap.EapCode.RESPONSE, 6, 2)
    nak = eap.decode(p.answer(packet(NAMES["peap"], b"\x20", 7)))
    assert (nak.type, nak.data) == (eap.TYPE_NAK, bytes([eap.TYPE_MD5]))
    assert p.answer(eap.encode(eap.EapPacket(eap.EapCode.SUCCESS, 8, None))) is None
    assert p.answer(b"\x01\x02") is None  # malformed: ignored


def test_a_retransmitted_request_gets_the_same_response_without_running_the_method_again():
    p = Peer(Credentials("alice", "pw"), (eap.TYPE_MD5,))
    req = eap.encode(eap.md5_challenge(3, b"0123456789abcdef"))
    first = p.answer(req)
    method = p.method
    assert p.answer(req) == first and p.method is method
    assert p.believes_success  # MD5 alone: nothing to verify


def test_a_new_authentication_makes_a_new_method():
    p = Peer(Credentials("alice", "pw"), (eap.TYPE_MD5,))
    p.answer(eap.encode(eap.md5_challenge(3, b"0123456789abcdef")))
    first = p.method
    p.answer(packet(eap.TYPE_IDENTITY, ident=9))
    assert p.method is None
    p.answer(eap.encode(eap.md5_challenge(10, b"fedcba9876543210")))
    assert isinstance(p.method, Md5) and p.method is not first


def test_a_tls_method_success_is_believed_only_once_the_method_finished(ca):
    p = Peer(Credentials("pete", "pw", ca), (NAMES["peap"],))
    assert not p.believes_success  # nothing ran: an AUTH_RESULT success now would be anyone's word
    hello = eap.decode(p.answer(packet(NAMES["peap"], b"\x20")))  # Start: our ClientHello
    assert hello.type == NAMES["peap"] and tls_frame.decode(hello.data).data[:1] == b"\x16"  # a TLS handshake record
    assert not p.believes_success
    first = p.method
    p.answer(packet(NAMES["peap"], b"\x20", 6))  # the server starts over: a fresh method
    assert p.method is not first


def test_tls_data_before_start_or_garbage_gives_up(ca):
    p = Peer(Credentials("pete", "pw", ca), (NAMES["peap"],))
    with pytest.raises(MethodError, match="before its Start"):
        p.answer(packet(NAMES["peap"], b"\x00\x16\x03\x03"))
    p.answer(packet(NAMES["peap"], b"\x20", 6))
    with pytest.raises(MethodError, match="TLS failed"):
        p.answer(packet(NAMES["peap"], b"\x00" + b"\x16\x03\x03\x00\x05hello", 7))


def test_check_says_which_file_is_missing(ca, tmp_path):
    check(Credentials("pete", "pw", ca), (NAMES["peap"],))
    with pytest.raises(CredentialsError, match="client certificate .*missing.pem: no such file"):
        check(Credentials("tina", "", ca, str(tmp_path / "missing.pem"), ca), (NAMES["tls"],))
    with pytest.raises(CredentialsError, match="no CA certificate given"):
        check(Credentials("pete", "pw"), (NAMES["ttls"],))


# -- PEAPv0 inside the tunnel -------------------------------------------------------------
def test_inner_packets_whole_or_compressed():
    assert decode_inner(bytes.fromhex("0107000501")) == Inner(REQ, eap.TYPE_IDENTITY, b"", 7, True)  # FreeRADIUS's Identity
    assert decode_inner(b"\x01") == Inner(REQ, eap.TYPE_IDENTITY, b"")
    assert decode_inner(b"\x1a\x01\x02") == Inner(REQ, 26, b"\x01\x02")
    resp = eap.EapCode.RESPONSE
    assert encode_inner(Inner(resp, eap.TYPE_IDENTITY, b"pete")) == b"\x01pete"
    assert encode_inner(Inner(resp, TYPE_EXTENSIONS, result_tlv(RESULT_SUCCESS), 9, True)) == bytes.fromhex("0209000b2180030002 0001".replace(" ", ""))
    with pytest.raises(DecodeError):
        decode_inner(b"")


def test_result_tlv():
    assert result_tlv(RESULT_FAILURE) == bytes.fromhex("800300020002")
    assert parse_result(bytes.fromhex("000700010a") + result_tlv(RESULT_SUCCESS)) == RESULT_SUCCESS
    assert parse_result(b"") is None
    with pytest.raises(DecodeError, match="runs past"):
        parse_result(bytes.fromhex("80030009"))


def mschap_challenge(ms_id: int = 1) -> Inner:
    body = bytes([16]) + bytes(range(16)) + b"radius"
    return Inner(REQ, 26, bytes([1, ms_id, 0, 4 + len(body)]) + body)


def success(message: str) -> Inner:
    return Inner(REQ, 26, bytes([3, 1, 0, 4 + len(message)]) + message.encode())


def extensions(result: int) -> Inner:
    return Inner(REQ, TYPE_EXTENSIONS, result_tlv(result), 12, True)


def test_peap_believes_the_result_only_after_the_server_proved_the_password(ca):
    m = EapPeap(Credentials("pete", "pw-pete", ca))
    assert m._answer(Inner(REQ, eap.TYPE_IDENTITY, b"", 3, True)) == Inner(eap.EapCode.RESPONSE, 1, b"pete", 3)
    with pytest.raises(MethodError, match="without proving"):
        m._answer(extensions(RESULT_SUCCESS))
    r = m._answer(mschap_challenge())
    assert r.type == 26 and r.data[0] == mschapv2.OpCode.RESPONSE and r.data[1] == 1 and not r.whole
    with pytest.raises(MethodError, match="does not know our password"):
        m._answer(success("S=" + "0" * 40 + " M=welcome"))
    assert m._answer(success(m.expected + " M=welcome")).data == mschapv2.success_ack()
    ack = m._answer(extensions(RESULT_SUCCESS))
    assert ack.whole and parse_result(ack.data) == RESULT_SUCCESS and m.finished


def test_peap_failure_is_acknowledged_and_explained(ca):
    m = EapPeap(Credentials("pete", "wrong", ca))
    m._answer(mschap_challenge())
    text = "E=691 R=0 C=00112233445566778899aabbccddeeff V=3 M=nope"
    assert m._answer(Inner(REQ, 26, bytes([4, 1, 0, 4 + len(text)]) + text.encode())).data == mschapv2.failure_ack()
    assert parse_result(m._answer(extensions(RESULT_FAILURE)).data) == RESULT_FAILURE
    assert "E=691" in m.failure and "wrong user name or password" in m.failure and not m.finished


def test_peap_naks_another_inner_method(ca):
    m = EapPeap(Credentials("pete", "pw", ca))
    assert encode_inner(m._answer(Inner(REQ, eap.TYPE_MD5, b"\x10" + bytes(16)))) == bytes([eap.TYPE_NAK, 26])


class OneShotLink:
    """An NVE that announces success at once, never having relayed a method."""
    mac, ip = "02:00:00:00:00:aa", ""

    def __init__(self) -> None:
        from tenet.wire.discovery import Message, MsgType, Tlv, TlvType
        self.queue = [("nve", Message(MsgType.AUTH_RESULT, 7, 6001, (Tlv(TlvType.AUTH_STATUS, 0),)))]
        self.sent: list = []

    def send(self, dst, msg) -> None:
        self.sent.append(msg)

    def recv(self, timeout):
        return self.queue.pop(0) if self.queue else None

    def attached(self, nve, result) -> None:
        raise AssertionError("must not attach")

    def detached(self) -> None: ...


def test_tes_refuses_a_success_no_tls_method_earned_and_ends_the_session(ca):
    from tenet.tes.client import AuthFailed, Config, Tes
    from tenet.tes.selection import Offer
    from tenet.wire.discovery import MsgType, NveType

    link = OneShotLink()
    t = Tes(link, Config("n1", 0, "tina", "", methods=(NAMES["ttls"],), ca=ca))
    with pytest.raises(AuthFailed, match="before the server proved itself"):
        t.authenticate(Offer("nve", NveType.HYPERVISOR, 1, 6001, 0), 7)
    assert [m.type for m in link.sent] == [MsgType.TERMINATE]


@pytest.mark.parametrize("extra, says", [
    (["--method", "peap"], "--method peap needs --password"),
    (["--method", "tls"], "--method tls: no CA certificate given"),
    (["--method", "tls", "--ca", "/nonexistent/ca.pem"], "CA certificate /nonexistent/ca.pem: no such file"),
    (["--method", "ttls", "--password", "x", "--ca", "{ca}", "--fragment-size", "2000"], "--fragment-size 2000 is outside"),
    (["--method", "tls", "--ca", "{ca}", "--cert", "{ca}", "--key", "{ca}"], "private key {ca} is not a PEM private key"),
    (["--method", "kerberos"], "invalid choice: 'kerberos'"),
])
def test_tenet_tes_says_what_is_wrong_before_it_starts(ca, capsys, extra, says):
    from tenet.tes.main import main
    with pytest.raises(SystemExit) as e:
        main(["--vn", "n1", "--identity", "tina", *[a.format(ca=ca) for a in extra]])
    assert e.value.code == 2 and says.format(ca=ca) in capsys.readouterr().err
