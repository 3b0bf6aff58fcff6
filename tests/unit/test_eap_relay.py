"""The EAP relay's timers (agent/eap_relay.py) and EAP-TLS-sized packets through every codec
on the relay's path: EAPOL (test_authenticator.py), NVO3 (test_admission.py) and RADIUS here,
where one EAP packet is split over several EAP-Message attributes and joined again."""
from __future__ import annotations

from collections import OrderedDict

import pytest
from pyrad import packet

from tenet.aaa.radius import EAP_MESSAGE, RadiusClient, RadiusReply, read_reply
from tenet.agent.eap_relay import Exchange, RelayEvent, Timers
from tenet.wire import eap


def test_retransmission_backs_off_from_three_seconds_doubling_to_twenty():
    t = Timers()
    assert [t.retransmit_after(n) for n in range(5)] == [3.0, 6.0, 12.0, 20.0, 20.0]
    assert sum(t.retransmit_after(n) for n in range(t.max_req + 1)) == 21.0  # a silent supplicant's grace


@pytest.mark.parametrize("kwargs, fragment", [
    ({"supp_timeout": 0}, "supp_timeout = 0"),
    ({"server_timeout": -1}, "server_timeout = -1"),
    ({"supp_timeout": 5, "supp_timeout_max": 4}, "supp_timeout_max = 4 is below supp_timeout = 5"),
])
def test_bad_timers_are_refused_naming_the_timer(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        Timers(**kwargs)
    assert Timers(max_req=0, server_restarts=0).max_req == 0  # no retransmission, no restart: allowed


def test_a_response_is_judged_against_the_request_in_flight():
    t = Timers()
    idle = Exchange()
    assert idle.judge(5, 5) is RelayEvent.STALE  # nothing asked
    asking = idle.asking(0, t, b"req")
    assert asking.judge(5, 5) is None and asking.judge(5, 4) is RelayEvent.STALE
    relayed = asking.relaying(1, tag=7)
    assert relayed.judge(5, 5) is RelayEvent.DUPLICATE and relayed.rounds == 1
    assert relayed.answers(7) and relayed.answers(None) and not relayed.answers(6)
    assert relayed.server_late(31, t) and not relayed.supplicant_late(100)


def tls_packet(code: eap.EapCode, size: int) -> bytes:
    body = bytes(i % 251 for i in range(size - 6))
    return eap.encode(eap.EapPacket(code, 42, 13, b"\xc0" + body))


def test_a_long_eap_response_is_split_over_eap_message_attributes():
    client = RadiusClient("198.18.0.9", "s3cret")
    response = tls_packet(eap.EapCode.RESPONSE, 1496)  # a full 1500-byte EAPOL frame's
    req = client.request("alice", response, b"state", "02-00-00-00-00-0A", "ts1")
    req.id = 3
    raw = req.RequestPacket()
    parsed = packet.AuthPacket(packet=raw, secret=b"s3cret", dict=client.dict)
    chunks = OrderedDict.get(parsed, EAP_MESSAGE)
    assert [len(c) for c in chunks] == [253] * 5 + [231] and b"".join(chunks) == response


def test_a_long_eap_request_from_the_server_is_joined_from_its_attributes():
    client = RadiusClient("198.18.0.9", "s3cret")
    req = client.request("alice", eap.encode(eap.identity_response(41, "alice")), None, "", "")
    req.id = 4
    req.RequestPacket()
    challenge = tls_packet(eap.EapCode.REQUEST, 1398)  # wpa_supplicant's and FreeRADIUS's TLS fragments
    reply = req.CreateReply()
    reply.code = packet.AccessChallenge
    OrderedDict.__setitem__(reply, EAP_MESSAGE, [challenge[i:i + 253] for i in range(0, len(challenge), 253)])
    OrderedDict.__setitem__(reply, 24, [b"round-2"])
    reply.add_message_authenticator()
    got = read_reply(reply.ReplyPacket(), req, b"s3cret", client.dict, "198.18.0.9")
    assert isinstance(got, RadiusReply) and got.code == "challenge"
    assert got.eap_message == challenge and got.state == b"round-2"
