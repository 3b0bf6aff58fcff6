"""The NVE admission state machine, driven with explicit time: no sockets, no sleeping."""
from __future__ import annotations

import random

from tenet.aaa.provisioning import Provisioning
from tenet.agent.admission import AskRadius, Attach, Detach, Nve, RadiusAnswer, Send
from tenet.agent.eap_relay import Noted, RelayEvent
from tenet.compute.tables import Servable
from tenet.tes.client import Offer, default_policy, first_answer
from tenet.wire import eap
from tenet.wire.discovery import Message, MsgType, NveType, ReasonCode, Tlv, TlvType

TES = "02:00:00:00:00:aa"


def nve():
    return Nve("h1", NveType.HYPERVISOR, 100, "198.18.1.10", {"tp1": "02:00:00:00:00:01"},
               (Servable("n1", 6001),), rng=random.Random(1))


def sends(actions, kind):
    return [a.msg for a in actions if isinstance(a, Send) and a.msg.type is kind]


def request(n, now=0.0, *tlvs):
    """A REQUEST carrying the TES's EAP-Response/Identity: the NVE asks RADIUS at once."""
    ident = Tlv(TlvType.EAP_PAYLOAD, eap.encode(eap.identity_response(1, "alice")))
    acts = n.on_frame(now, "tp1", TES, Message(MsgType.REQUEST, 0, 6001, (*tlvs, ident)))
    assert [type(a) for a in acts] == [Send, AskRadius]
    return sends(acts, MsgType.CONFIRM)[0].session_id


def answer(n, now, sid, identifier, data=b"alice"):
    """The TES's Response to the request with `identifier`, as it reaches the NVE."""
    pkt = eap.encode(eap.EapPacket(eap.EapCode.RESPONSE, identifier, eap.TYPE_IDENTITY, data))
    return n.on_frame(now, "tp1", TES, Message(MsgType.EAP, sid, 6001, (Tlv(TlvType.EAP_PAYLOAD, pkt),)))


def attach(n, now=0.0, timeout=None):
    acts = n.on_frame(now, "tp1", TES, Message(MsgType.REQUEST, 0, 0, (Tlv(TlvType.VN_NAME, "n1"),)))
    sid = sends(acts, MsgType.CONFIRM)[0].session_id
    ident = eap.encode(eap.identity_response(1, "alice"))
    acts = n.on_frame(now, "tp1", TES, Message(MsgType.EAP, sid, 6001, (Tlv(TlvType.EAP_PAYLOAD, ident),)))
    assert isinstance(acts[0], AskRadius) and acts[0].identity == "alice"
    acts = n.on_radius(now, sid, RadiusAnswer("accept", b"\x03\x01\x00\x04", provisioning=Provisioning(vn="n1", session_timeout=timeout)))
    return sid, acts


def test_offers_only_vns_it_serves():
    n = nve()
    offer = n.on_frame(0, "tp1", TES, Message(MsgType.DISCOVER, 0, 0, (Tlv(TlvType.VN_NAME, "n1"), Tlv(TlvType.HOST_UNIQ, b"u"))))
    assert sends(offer, MsgType.OFFER)[0].get(TlvType.HOST_UNIQ) == b"u"
    assert sends(offer, MsgType.OFFER)[0].vnid == 6001
    assert n.on_frame(0, "tp1", TES, Message(MsgType.DISCOVER, 0, 0, (Tlv(TlvType.VN_NAME, "other"),))) == []
    assert n.on_frame(0, "tp1", TES, Message(MsgType.DISCOVER, 0, 6002)) == []
    assert sends(n.on_frame(0, "tp1", TES, Message(MsgType.DISCOVER, 0, 6001)), MsgType.OFFER)


def test_accept_attaches_with_provisioning():
    sid, acts = attach(nve())
    result = sends(acts, MsgType.AUTH_RESULT)[0]
    assert result.get(TlvType.AUTH_STATUS) == 0 and result.session_id == sid
    assert any(isinstance(a, Attach) and a.session.vn == "n1" for a in acts)


def test_identity_in_the_request_goes_straight_to_radius():
    """A REQUEST carrying the TES's EAP-Response/Identity: CONFIRM and the Access-Request at
    once, no EAP-Request/Identity; any other EAP packet there is ignored (asked as usual)."""
    ident = Tlv(TlvType.EAP_PAYLOAD, eap.encode(eap.identity_response(1, "alice")))
    acts = nve().on_frame(0, "tp1", TES, Message(MsgType.REQUEST, 0, 6001, (ident,)))
    assert [type(a) for a in acts] == [Send, AskRadius] and sends(acts, MsgType.CONFIRM)
    assert acts[1].identity == "alice" and acts[1].eap == ident.value and acts[1].state is None
    md5 = Tlv(TlvType.EAP_PAYLOAD, eap.encode(eap.md5_response(1, b"pw", b"challenge")))
    for odd in (md5, Tlv(TlvType.EAP_PAYLOAD, b"\x02\x01\x00\x09\x01")):  # not identity; malformed
        acts = nve().on_frame(0, "tp1", TES, Message(MsgType.REQUEST, 0, 6001, (odd,)))
        assert [type(a) for a in acts] == [Send, Send] and sends(acts, MsgType.EAP)


def test_reject_never_attaches():
    n = nve()
    sid = request(n)
    acts = n.on_radius(0.1, sid, RadiusAnswer("reject"))
    assert sends(acts, MsgType.AUTH_RESULT)[0].get(TlvType.AUTH_STATUS) == 1
    assert not any(isinstance(a, Attach) for a in acts)
    assert n.on_frame(0.2, "tp1", TES, Message(MsgType.HELLO, sid, 6001)) == []  # not attached: no ack


def test_radius_assigning_another_vn_is_refused():
    n = nve()
    sid = request(n)
    acts = n.on_radius(0, sid, RadiusAnswer("accept", provisioning=Provisioning(vn="n9")))
    assert sends(acts, MsgType.AUTH_RESULT)[0].get(TlvType.REASON).code is ReasonCode.VN_UNAVAILABLE


def test_unknown_or_forged_session_frames_are_dropped():
    n = nve()
    sid, _ = attach(n)
    assert n.on_frame(1, "tp1", TES, Message(MsgType.TERMINATE, sid + 1, 6001)) == []
    assert n.on_frame(1, "tp1", "02:66:66:66:66:66", Message(MsgType.TERMINATE, sid, 6001)) == []
    assert n.on_frame(1, "tp2", TES, Message(MsgType.TERMINATE, sid, 6001)) == []
    assert n.dropped == 3 and sid in n.sessions


def test_keepalive_timeout_after_three_missed_hellos():
    n = nve()
    sid, _ = attach(n, now=0.0)
    assert sends(n.on_frame(1.0, "tp1", TES, Message(MsgType.HELLO, sid, 6001)), MsgType.HELLO_ACK)
    assert n.tick(3.9) == []  # 2.9 s since the last hello
    acts = n.tick(4.1)
    assert any(isinstance(a, Detach) and a.reason is ReasonCode.KEEPALIVE_TIMEOUT for a in acts)
    assert sends(acts, MsgType.TERMINATE) and sid not in n.sessions


def test_terminate_detaches():
    n = nve()
    sid, _ = attach(n)
    acts = n.on_frame(1, "tp1", TES, Message(MsgType.TERMINATE, sid, 6001))
    assert [type(a) for a in acts] == [Detach] and not n.sessions


def test_session_timeout_reauthenticates():
    n = nve()
    sid, _ = attach(n, now=0.0, timeout=30)
    n.on_frame(29, "tp1", TES, Message(MsgType.HELLO, sid, 6001))
    acts = n.tick(30.0)
    req = eap.decode(sends(acts, MsgType.EAP)[0].get(TlvType.EAP_PAYLOAD))
    assert req.type == eap.TYPE_IDENTITY
    assert [type(a) for a in answer(n, 30.05, sid, req.identifier)] == [AskRadius]
    ok = n.on_radius(30.1, sid, RadiusAnswer("accept", provisioning=Provisioning(vn="n1", session_timeout=30)))
    assert sends(ok, MsgType.AUTH_RESULT) and not any(isinstance(a, Attach) for a in ok)  # already attached
    n.on_frame(59.5, "tp1", TES, Message(MsgType.HELLO, sid, 6001))
    req = eap.decode(sends(n.tick(60.1), MsgType.EAP)[0].get(TlvType.EAP_PAYLOAD))  # the next period is due
    answer(n, 60.15, sid, req.identifier)
    bad = n.on_radius(60.2, sid, RadiusAnswer("reject"))
    assert any(isinstance(a, Detach) and a.reason is ReasonCode.REAUTH_FAILED for a in bad)


def test_selection_policy():
    offers = [Offer("a", NveType.HYPERVISOR, 500, 1, 0), Offer("b", NveType.ACCESS_SWITCH, 10, 1, 1),
              Offer("c", NveType.ACCESS_SWITCH, 90, 1, 2), Offer("d", NveType.ACCESS_SWITCH, 90, 1, 3)]
    assert default_policy(offers).nve == "c"  # access switch, then capability, then first
    assert first_answer(offers).nve == "a"


def test_l3_transport_allocates_an_access_tunnel_per_session():
    n = nve()
    n.uplink_mac = "02:00:00:00:00:99"
    chan = "udp:198.18.2.50:6768"
    req = Message(MsgType.REQUEST, 0, 0, (Tlv(TlvType.VN_NAME, "n1"), Tlv(TlvType.TES_MAC, TES)))
    offer = n.on_frame(0, chan, TES, Message(MsgType.DISCOVER, 0, 6001, (Tlv(TlvType.TES_MAC, TES),)))
    assert sends(offer, MsgType.OFFER)[0].get(TlvType.NVE_MAC) == "02:00:00:00:00:99"
    sid = sends(n.on_frame(0, chan, TES, req), MsgType.CONFIRM)[0].session_id
    # session frames over UDP carry no MAC: the channel (TES IP and port) identifies the TES
    assert isinstance(n.on_frame(0, chan, "", Message(MsgType.EAP, sid, 6001, (Tlv(TlvType.EAP_PAYLOAD, eap.encode(eap.identity_response(1, "alice"))),)))[0], AskRadius)
    assert n.on_frame(0, "udp:198.18.2.66:6768", "", Message(MsgType.HELLO, sid, 6001)) == []  # another sender
    acts = n.on_radius(0, sid, RadiusAnswer("accept", provisioning=Provisioning(vn="n1")))
    tunnel = sends(acts, MsgType.AUTH_RESULT)[0].get(TlvType.ACCESS_TUNNEL)
    att = next(a for a in acts if isinstance(a, Attach)).session
    assert tunnel.vni == att.tunnel_vni and tunnel.port == 4790 and att.access_port == f"tna{tunnel.vni:06x}"
    assert sends(n.on_frame(1, chan, "", Message(MsgType.HELLO, sid, 6001)), MsgType.HELLO_ACK)


def test_l3_transport_is_off_without_an_uplink_mac():
    n = nve()
    assert n.on_frame(0, "udp:198.18.2.50:6768", TES, Message(MsgType.DISCOVER, 0, 6001)) == []


def test_address_from_radius_is_given_to_the_tes_and_reported():
    n = nve()
    sid = request(n, 0, Tlv(TlvType.TES_IP, "10.1.0.99/24"))
    acts = n.on_radius(0, sid, RadiusAnswer("accept", provisioning=Provisioning(vn="n1", ip="10.1.0.40/24")))
    assert str(sends(acts, MsgType.AUTH_RESULT)[0].get(TlvType.TES_IP)) == "10.1.0.40/24"
    assert next(a for a in acts if isinstance(a, Attach)).session.tes_ip == "10.1.0.40/24"  # RADIUS wins


class RecordingLink:
    mac, ip = "02:00:00:00:00:aa", ""

    def __init__(self) -> None:
        self.sent: list = []

    def send(self, dst, msg):
        self.sent.append((dst, msg))


def test_tes_answers_md5_and_naks_unknown_methods_proposing_its_own():
    from tenet.tes.client import Config, Tes

    link = RecordingLink()
    tes = Tes(link, Config("n1", 0, "alice", "wonderland"))
    tes._answer_eap("nve", 7, 6001, eap.encode(eap.md5_challenge(3, b"0123456789abcdef")))
    tes._answer_eap("nve", 7, 6001, eap.encode(eap.EapPacket(eap.EapCode.REQUEST, 4, 13, b"\x20")))  # EAP-TLS
    md5, tls = (eap.decode(m.get(TlvType.EAP_PAYLOAD)) for _, m in link.sent)
    assert md5 == eap.md5_response(3, b"wonderland", b"0123456789abcdef")
    assert tls.type == eap.TYPE_NAK and tls.data == bytes([eap.TYPE_MD5]) and tls.identifier == 4


def test_operator_revocation_terminates_and_detaches():
    n = nve()
    sid, _ = attach(n)
    acts = n.revoke(TES, "policy changed")
    term = sends(acts, MsgType.TERMINATE)[0]
    assert term.session_id == sid and term.get(TlvType.REASON).code is ReasonCode.ADMIN
    assert any(isinstance(a, Detach) and a.reason is ReasonCode.ADMIN for a in acts)
    assert n.revoke(TES, "again") == [] and sid not in n.sessions


def test_coa_changes_an_attached_tes_rates_and_reports_them():
    """RFC 5176 CoA for an NVO3 TES: the attributes it carries replace the session's, the new
    report carries them to the tables; the VN and address stay those of the session."""
    n = nve()
    sid, _ = attach(n)
    acts = n.change(TES, {"rate_up_bps": 8_000_000, "vn": "elsewhere"})
    assert [type(a) for a in acts] == [Attach]
    p = acts[0].session.provisioning
    assert (p.rate_up_bps, p.vn) == (8_000_000, "n1") and n.sessions[sid].provisioning == p
    assert n.change("02:00:00:00:00:99", {"rate_up_bps": 1}) == []  # not here: the caller NAKs


# -- the relay toward the TES (eap_relay.py): per-round timers, duplicates, server failures --

def eap_of(actions):
    """The EAP packet of the (one) EAP message sent to the TES."""
    msgs = sends(actions, MsgType.EAP)
    assert len(msgs) == 1, actions
    return eap.decode(msgs[0].get(TlvType.EAP_PAYLOAD))


def challenge(identifier, data=b"\x20"):
    return RadiusAnswer("challenge", eap.encode(eap.EapPacket(eap.EapCode.REQUEST, identifier, 13, data)), b"st")


def test_an_unanswered_request_is_sent_again_then_the_silent_tes_is_told_and_forgotten():
    n = nve()
    acts = n.on_frame(0, "tp1", TES, Message(MsgType.REQUEST, 0, 6001))
    sid, req = sends(acts, MsgType.CONFIRM)[0].session_id, eap_of(acts)
    assert n.sessions[sid].exchange.request is not None and n.tick(2.99) == []
    again = n.tick(3.0)
    assert again[0] == Noted(RelayEvent.RETRANSMIT, TES) and eap_of(again) == req
    assert n.tick(8.99) == [] and eap_of(n.tick(9.0)) == req
    end = n.tick(21.0)
    assert end[0].event is RelayEvent.SUPPLICANT_TIMEOUT
    result = sends(end, MsgType.AUTH_RESULT)[0]
    assert result.get(TlvType.AUTH_STATUS) == 1 and result.get(TlvType.REASON).code is ReasonCode.AUTH_FAILED
    assert not n.sessions and not any(isinstance(a, Attach) for a in end)


def test_a_tes_that_stalls_mid_exchange_leaves_no_session_and_is_never_attached():
    n = nve()
    sid = request(n)
    req = eap_of(n.on_radius(0.1, sid, challenge(2)))
    assert req.identifier == 2 and req.type == 13
    out = n.tick(3.1) + n.tick(9.1) + n.tick(21.1)
    assert [eap_of([a]).identifier for a in out if isinstance(a, Send) and a.msg.type is MsgType.EAP] == [2, 2]
    assert not n.sessions and not any(isinstance(a, (Attach, AskRadius)) for a in out)
    assert n.on_radius(22, sid, RadiusAnswer("accept", provisioning=Provisioning(vn="n1"))) == []  # late: nobody


def test_a_duplicate_response_is_relayed_once_and_a_stale_one_dropped():
    n = nve()
    sid = request(n)
    assert n.on_radius(0.1, sid, challenge(2)) and n.sessions[sid].eap_id == 2
    first = answer(n, 0.2, sid, 2, b"\x00")
    assert [type(a) for a in first] == [AskRadius]
    assert answer(n, 0.3, sid, 2, b"\x00") == [Noted(RelayEvent.DUPLICATE, TES)]  # RADIUS still asked
    assert answer(n, 0.4, sid, 1) == [Noted(RelayEvent.STALE, TES)]  # the identity, long answered
    request_again = eap.encode(eap.EapPacket(eap.EapCode.REQUEST, 2, 13, b""))  # a Request from the TES: nonsense
    assert n.on_frame(0.5, "tp1", TES, Message(MsgType.EAP, sid, 6001, (Tlv(TlvType.EAP_PAYLOAD, request_again),))) == []


def test_a_ten_round_exchange_outlasting_the_old_flat_limit_attaches():
    """EAP-TLS: ten rounds, each 2 s at the TES and 0.5 s at RADIUS — 25 s in all."""
    n = nve()
    sid, now = request(n), 0.0
    for rnd in range(10):
        now += 0.5
        assert eap_of(n.on_radius(now, sid, challenge(rnd + 2))).identifier == rnd + 2
        assert n.tick(now + 1.9) == []
        now += 2.0
        ask = answer(n, now, sid, rnd + 2, b"\x00" * 1000)
        assert [type(a) for a in ask] == [AskRadius] and ask[0].state == b"st"
    acts = n.on_radius(now + 0.5, sid, RadiusAnswer("accept", provisioning=Provisioning(vn="n1")), ask[0].tag)
    assert any(isinstance(a, Attach) for a in acts) and n.sessions[sid].state == "attached"


def test_a_server_failure_mid_exchange_restarts_with_a_fresh_identity_request():
    n = nve()
    sid = request(n)
    n.on_radius(0.1, sid, challenge(2))
    ask = answer(n, 0.2, sid, 2, b"\x00")
    out = n.on_radius(4.2, sid, RadiusAnswer("error", error="RADIUS unavailable: no reply"), ask[0].tag)
    assert out[:2] == [Noted(RelayEvent.SERVER_TIMEOUT, TES, "RADIUS unavailable: no reply"), Noted(RelayEvent.RESTART, TES)]
    req = eap_of(out)
    assert req.type == eap.TYPE_IDENTITY and req.identifier == 3 and not sends(out, MsgType.AUTH_RESULT)
    assert n.sessions[sid].radius_state is None  # the failed server's State means nothing to the next
    ask = answer(n, 4.3, sid, 3)
    assert ask[0].state is None and ask[0].identity == "alice"
    assert any(isinstance(a, Attach) for a in n.on_radius(4.4, sid, RadiusAnswer("accept", provisioning=Provisioning(vn="n1")), ask[0].tag))


def test_no_server_answering_fails_the_attempt_with_the_cause_and_keeps_nothing():
    n = nve()
    sid = request(n)
    out = n.on_radius(4, sid, RadiusAnswer("error", error="RADIUS unavailable: no valid reply"), n.tags)
    reason = sends(out, MsgType.AUTH_RESULT)[0].get(TlvType.REASON)
    assert reason.code is ReasonCode.AUTH_FAILED and reason.text == "RADIUS unavailable: no valid reply"
    assert not n.sessions  # not held as rejected: the TES did nothing wrong and may try at once


def test_server_timeout_is_the_backstop_when_no_answer_ever_comes():
    n = nve()
    sid = request(n)
    assert n.tick(29.9) == [] and n.sessions[sid].exchange.pending
    out = n.tick(30.0)
    assert out[0] == Noted(RelayEvent.SERVER_TIMEOUT, TES, "no answer from RADIUS in 30 s") and not n.sessions
    assert sends(out, MsgType.AUTH_RESULT)


def test_an_attached_tes_keeps_its_session_through_a_server_outage():
    n = nve()
    sid, _ = attach(n, now=0.0, timeout=30)
    n.on_frame(29.5, "tp1", TES, Message(MsgType.HELLO, sid, 6001))
    req = eap_of(n.tick(30.0))
    ask = answer(n, 30.1, sid, req.identifier)
    n.on_frame(31, "tp1", TES, Message(MsgType.HELLO, sid, 6001))
    out = n.on_radius(32, sid, RadiusAnswer("error", error="down"), ask[0].tag)
    assert out == [Noted(RelayEvent.SERVER_TIMEOUT, TES, "down")]  # no AUTH_RESULT, no TERMINATE, no Detach
    s = n.sessions[sid]
    assert s.state == "attached" and s.reauth_at == 32 + n.timers.server_retry
    for t in range(33, 92):
        n.on_frame(t, "tp1", TES, Message(MsgType.HELLO, sid, 6001))
        assert not any(isinstance(a, Send) and a.msg.type is MsgType.EAP for a in n.tick(t))
    assert eap_of(n.tick(92.0)).type == eap.TYPE_IDENTITY  # asked again once the retry is due


def test_a_tes_silent_on_re_authentication_is_terminated():
    n = nve()
    sid, _ = attach(n, now=0.0, timeout=30)
    out = []
    for t in (29.0, 30.0, 31.0, 32.0, 33.0, 34.0):  # it keeps its hellos, but never answers EAP
        n.on_frame(t, "tp1", TES, Message(MsgType.HELLO, sid, 6001))
        out += n.tick(t)
    for t in range(35, 52):
        n.on_frame(t, "tp1", TES, Message(MsgType.HELLO, sid, 6001))
        out += n.tick(t)
    assert any(isinstance(a, Detach) and a.reason is ReasonCode.REAUTH_FAILED for a in out) and not n.sessions


def test_eap_tls_sized_payloads_fit_the_nvo3_frame_and_datagram():
    """An EAP packet of 1484 bytes fills a 1500-byte MTU behind NVO3's 12-byte header and the
    4-byte EAP_PAYLOAD TLV; the same over UDP; the codecs carry it whole both ways."""
    from tenet.wire.discovery import decode, encode, frame, unframe
    payload = eap.encode(eap.EapPacket(eap.EapCode.REQUEST, 9, 13, b"\x00" + bytes(range(256)) * 5 + bytes(198)))
    assert len(payload) == 1484
    msg = Message(MsgType.EAP, 0xDEADBEEF, 6001, (Tlv(TlvType.EAP_PAYLOAD, payload),))
    wire = frame(TES, "02:00:00:00:00:01", msg)
    assert len(wire) == 14 + 1500 and unframe(wire)[3] == msg
    assert decode(encode(msg)).get(TlvType.EAP_PAYLOAD) == payload
    n = nve()
    sid = request(n)
    out = n.on_radius(0.1, sid, RadiusAnswer("challenge", payload, b"st"))
    assert sends(out, MsgType.EAP)[0].get(TlvType.EAP_PAYLOAD) == payload
    assert sends(n.tick(3.1), MsgType.EAP)[0].get(TlvType.EAP_PAYLOAD) == payload
