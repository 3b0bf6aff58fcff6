"""BlastRADIUS (CVE-2024-3596) on the NVE's side: Message-Authenticator first in every
Access-Request, and every reply without a valid one (or without a valid Response
Authenticator) dropped and counted — over real UDP sockets, with replies forged by hand."""
from __future__ import annotations

import hashlib
import hmac
import select

import pytest
from pyrad import packet

from radius_peer import MA, SECRET, Peer, attributes, sign
from tenet.aaa.failover import RadiusPolicy
from tenet.aaa.radius import (
    CARRIER_EAPOL, CARRIER_NVO3_L2, CARRIER_NVO3_UDP, DropReason, RadiusClient, RadiusMux, RadiusReply, check_reply,
    framed_mtu,
)
from tenet.wire import eap

IDENTITY = eap.encode(eap.identity_response(1, "alice"))


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.close()


@pytest.fixture
def mux(peer):
    m = RadiusMux(RadiusClient(peer.server.ip, SECRET.decode(), peer.server.port), RadiusPolicy(timeout=1.0, retries=0))
    yield m
    m.close()


def answers(mux, now=0.0, wait=1.0):
    select.select([mux], [], [], wait)
    return mux.on_readable(now)


@pytest.mark.parametrize("password, eap_message", [(None, IDENTITY), ("02-00-00-00-00-01", None)])
def test_message_authenticator_is_the_first_attribute_and_covers_the_whole_request(password, eap_message):
    c = RadiusClient("127.0.0.1", SECRET.decode())
    req = c.request("alice", eap_message, b"st", "02-00-00-00-00-01", "tp1", password=password, mtu=1486)
    req.id = 42
    raw = req.RequestPacket()
    attrs = attributes(raw)
    assert attrs[0][0] == MA and len(attrs[0][1]) == 16 and [k for k, _ in attrs].count(MA) == 1
    zeroed = raw[:22] + bytes(16) + raw[38:]  # RFC 3579 §3.2: HMAC-MD5 over the packet, MA zeroed
    assert hmac.new(SECRET, zeroed, "md5").digest() == attrs[0][1]
    mtu = [v for k, v in attrs if k == 12]
    assert mtu == ([(1486).to_bytes(4, "big")] if eap_message else [])  # Framed-MTU with EAP only


def test_framed_mtu_fits_an_eap_tls_fragment_into_one_frame():
    """FreeRADIUS sends TLS fragments of Framed-MTU octets plus 10 of EAP-TLS framing."""
    assert framed_mtu(1500, CARRIER_EAPOL) == 1486  # 1486 + 10 + EAPOL 4 = 1500
    assert framed_mtu(1450, CARRIER_NVO3_L2) == 1424  # a VM port under VXLAN: 1424 + 10 + 16 = 1450
    assert framed_mtu(1500, CARRIER_NVO3_UDP) == 1446  # 1446 + 10 + 12 + 4 + 8 + 20 = 1500
    assert framed_mtu(60, CARRIER_EAPOL) == 64


def test_status_server_carries_message_authenticator_first():
    req = RadiusClient("127.0.0.1", SECRET.decode()).status_server()
    req.id = 3
    raw = req.RequestPacket()
    assert raw[0] == packet.StatusServer and attributes(raw)[0][0] == MA
    assert hmac.new(SECRET, raw[:22] + bytes(16) + raw[38:], "md5").digest() == attributes(raw)[0][1]


FORGERIES = {
    # a valid Response Authenticator without Message-Authenticator: what BlastRADIUS forges
    "no_message_authenticator": lambda r: sign(packet.AccessAccept, r.id, r.authenticator, [(79, b"\x03\x02\x00\x04")],
                                               ma="none"),
    "bad_message_authenticator": lambda r: sign(packet.AccessAccept, r.id, r.authenticator, [], ma="wrong"),
    "bad_authenticator": lambda r: sign(packet.AccessAccept, r.id, r.authenticator, [], secret=b"another-secret"),
    "malformed": lambda r: sign(packet.AccessAccept, r.id, r.authenticator, [])[:20] + b"\x4f\x09abc",
    "unexpected_proxy_state": lambda r: sign(packet.AccessAccept, r.id, r.authenticator, [(33, b"\x00" * 40)]),
}


@pytest.mark.parametrize("reason", sorted(FORGERIES))
def test_a_forged_reply_is_dropped_and_counted_and_the_real_one_still_counts(peer, mux, reason):
    mux.submit(0.0, "t", "alice", IDENTITY, None)
    req = peer.request()
    peer.send(req, FORGERIES[reason](req))
    assert answers(mux, wait=0.2) == []
    assert mux.dropped == {(str(peer.server), DropReason(reason)): 1}
    peer.challenge(req, b"state-A")  # the real reply, after the forgery, is taken
    [(tag, reply)] = answers(mux)
    assert tag == "t" and isinstance(reply, RadiusReply) and reply.code == "challenge" and reply.state == b"state-A"


@pytest.mark.parametrize("where", ["first", "last"])
def test_message_authenticator_is_required_but_not_its_place(peer, mux, where):
    """FreeRADIUS 3.2.1 puts it after EAP-Message (3.2.5 first): both verify."""
    mux.submit(0.0, "t", "alice", IDENTITY, None)
    req = peer.request()
    peer.accept(req, ma=where)
    [(_, reply)] = answers(mux)
    assert reply.code == "accept" and not mux.dropped


def test_a_reply_to_nothing_in_flight_is_counted_unmatched(peer, mux):
    mux.submit(0.0, "t", "alice", IDENTITY, None)
    req = peer.request()
    peer.accept(req)
    assert len(answers(mux)) == 1
    peer.accept(req)  # a duplicate (the answer to a retransmission, say)
    assert answers(mux, wait=0.2) == []
    assert mux.dropped == {(str(peer.server), DropReason.UNMATCHED): 1}


def test_check_reply_is_pure_and_exact():
    auth = bytes(range(16))
    good = sign(packet.AccessReject, 9, auth, [(18, b"no")])
    assert check_reply(good, auth, SECRET) is None
    assert check_reply(good + b"\0" * 7, auth, SECRET) is None  # padding past Length is ignored
    assert check_reply(good[:-1], auth, SECRET) is DropReason.MALFORMED  # Length beyond the datagram
    assert check_reply(good, bytes(16), SECRET) is DropReason.BAD_AUTHENTICATOR  # another request's reply
    bare = sign(packet.AccessAccept, 9, auth, [], ma="none")
    assert check_reply(bare, auth, SECRET) is DropReason.NO_MESSAGE_AUTHENTICATOR
    assert check_reply(bare, auth, SECRET, require_ma=False) is None  # a Status-Server answer
    two = bytearray(sign(packet.AccessAccept, 9, auth, [(MA, bytes(16))], ma="first"))
    assert check_reply(bytes(two), auth, SECRET) is DropReason.BAD_MESSAGE_AUTHENTICATOR  # two of them
    short = sign(packet.AccessAccept, 9, auth, [(MA, bytes(8))], ma="none")
    assert check_reply(short, auth, SECRET) is DropReason.BAD_MESSAGE_AUTHENTICATOR
    raw = bytearray(good)
    raw[4:20] = hashlib.md5(bytes(raw[:4]) + auth + bytes(raw[20:]) + SECRET).digest()
    assert check_reply(bytes(raw), auth, SECRET) is None
