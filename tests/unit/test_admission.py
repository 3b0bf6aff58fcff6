"""The NVE admission state machine, driven with explicit time: no sockets, no sleeping."""
from __future__ import annotations

import random

from tenet.aaa.provisioning import Provisioning
from tenet.agent.admission import AskRadius, Attach, Detach, Nve, RadiusAnswer, Send
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
    acts = n.on_frame(0, "tp1", TES, Message(MsgType.REQUEST, 0, 6001))
    sid = sends(acts, MsgType.CONFIRM)[0].session_id
    acts = n.on_radius(0.1, sid, RadiusAnswer("reject"))
    assert sends(acts, MsgType.AUTH_RESULT)[0].get(TlvType.AUTH_STATUS) == 1
    assert not any(isinstance(a, Attach) for a in acts)
    assert n.on_frame(0.2, "tp1", TES, Message(MsgType.HELLO, sid, 6001)) == []  # not attached: no ack


def test_radius_assigning_another_vn_is_refused():
    n = nve()
    sid = sends(n.on_frame(0, "tp1", TES, Message(MsgType.REQUEST, 0, 6001)), MsgType.CONFIRM)[0].session_id
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
    req = sends(acts, MsgType.EAP)[0]
    assert eap.decode(req.get(TlvType.EAP_PAYLOAD)).type == eap.TYPE_IDENTITY
    ok = n.on_radius(30.1, sid, RadiusAnswer("accept", provisioning=Provisioning(vn="n1", session_timeout=30)))
    assert sends(ok, MsgType.AUTH_RESULT) and not any(isinstance(a, Attach) for a in ok)  # already attached
    n.on_frame(59.5, "tp1", TES, Message(MsgType.HELLO, sid, 6001))
    assert sends(n.tick(60.1), MsgType.EAP)  # the next period is due: re-authenticate again
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
    acts = n.on_frame(0, "tp1", TES, Message(MsgType.REQUEST, 0, 0, (Tlv(TlvType.VN_NAME, "n1"), Tlv(TlvType.TES_IP, "10.1.0.99/24"))))
    sid = sends(acts, MsgType.CONFIRM)[0].session_id
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


def test_an_attached_session_outlives_a_radius_outage_at_reauthentication():
    """RADIUS unavailable is no verdict: the session stays attached, nothing is sent or
    detached, and re-authentication is tried again later; a real Reject still ends it."""
    from tenet.agent.admission import REAUTH_RETRY

    n = nve()
    sid, _ = attach(n, now=0.0, timeout=30)
    n.on_frame(29, "tp1", TES, Message(MsgType.HELLO, sid, 6001))
    assert sends(n.tick(30.0), MsgType.EAP)
    n.on_frame(30.05, "tp1", TES, Message(MsgType.EAP, sid, 6001, (Tlv(TlvType.EAP_PAYLOAD, eap.encode(eap.identity_response(n.sessions[sid].eap_id, "alice"))),)))
    assert n.on_radius(34.0, sid, RadiusAnswer("error", error="RADIUS unavailable: no valid reply")) == []
    assert n.sessions[sid].state == "attached" and n.sessions[sid].reauth_at == 34.0 + REAUTH_RETRY
    n.on_frame(34.5, "tp1", TES, Message(MsgType.HELLO, sid, 6001))
    assert n.tick(35.0) == []  # hellos keep it; no re-authentication until the retry
    for t in range(36, 64, 2):
        n.on_frame(t, "tp1", TES, Message(MsgType.HELLO, sid, 6001))
    assert sends(n.tick(34.0 + REAUTH_RETRY), MsgType.EAP)  # asked again
    bad = n.on_radius(64.5, sid, RadiusAnswer("reject"))
    assert any(isinstance(a, Detach) and a.reason is ReasonCode.REAUTH_FAILED for a in bad)
