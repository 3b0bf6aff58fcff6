"""802.1X on behalf of VMs (seed 000): the host's proxy supplicant against the switch's
multi-auth authenticator, both pure, with time as an argument. RADIUS is a small EAP-MD5
server double here; the lab tests use FreeRADIUS."""
from __future__ import annotations

import hashlib

from tenet.aaa.provisioning import Provisioning
from tenet.agent.admission import RadiusAnswer
from tenet.agent.authenticator import (
    HELD_PERIOD, AskRadius, Authenticator, Authorize, Deauthorize, SendEapol, mab_name,
)
from tenet.agent.eap_relay import Noted, RelayEvent, Timers
from tenet.agent.proxy_peer import TesPeer
from tenet.agent.proxy8021x import Credentials, Emit, Proxy
from tenet.wire import eap, eapol
from tenet.wire.eapol import PAE_GROUP, Eapol, EapolType, of_eap

PORT, V, W = "sw1", "02:00:00:00:00:0a", "02:00:00:00:00:0b"
USERS = {"vm-v": "s3cret", "vm-w": "other"}
GRANT = Provisioning(vn="n2", rate_down_bps=10_000_000)


class Radius:
    """EAP-MD5 as FreeRADIUS runs it: Identity -> MD5-Challenge -> Accept or Reject."""

    def __init__(self, mab_allowed=()):
        self.mab_allowed = set(mab_allowed)
        self.challenge = bytes(range(16))

    def __call__(self, ask: AskRadius) -> RadiusAnswer:
        if ask.mab:
            return RadiusAnswer("accept", provisioning=GRANT) if ask.user_name in self.mab_allowed else RadiusAnswer("reject")
        pkt = eap.decode(ask.eap)
        if pkt.type == eap.TYPE_IDENTITY:
            return RadiusAnswer("challenge", eap.encode(eap.md5_challenge(pkt.identifier + 1, self.challenge)), b"st")
        value = eap.parse_md5(pkt)[0]
        good = hashlib.md5(bytes([pkt.identifier]) + USERS.get(ask.user_name, "").encode() + self.challenge).digest()
        return RadiusAnswer("accept", provisioning=GRANT) if value == good and ask.state == b"st" else RadiusAnswer("reject")


def run(host: Proxy, switch: Authenticator, radius: Radius, now: float, emits: list[Emit]) -> list:
    """Carry frames both ways (the host's uplink is the switch port) until quiet; return the
    switch's Authorize/Deauthorize actions."""
    decided, pending = [], list(emits)
    while pending:
        item = pending.pop(0)
        if isinstance(item, Emit):
            pending += switch.on_eapol(now, PORT, item.src, item.frame)
        elif isinstance(item, SendEapol):
            pending += host.on_eapol(now, item.dst, "02:5e:00:00:00:01", item.frame)
        elif isinstance(item, AskRadius):
            pending += switch.on_radius(now, item.key, radius(item), item.tag)
        elif not isinstance(item, Noted):
            decided.append(item)
    return decided


def test_host_authenticates_a_new_vm_with_its_mac_and_the_switch_provisions_it():
    host, switch = Proxy(TesPeer), Authenticator()
    start = host.vm_up(0, V, Credentials("vm-v", "s3cret"))
    assert start == [Emit(V, PAE_GROUP, start[0].frame)] and start[0].frame.type is EapolType.START
    assert run(host, switch, Radius(), 0, start) == [Authorize(PORT, V, GRANT)]
    assert host.vms[V].state == "authorized" and switch.sessions[(PORT, V)].state == "authorized"


def test_many_macs_on_one_port_each_on_its_own():
    host, switch = Proxy(TesPeer), Authenticator()
    got = run(host, switch, Radius(), 0, host.vm_up(0, V, Credentials("vm-v", "s3cret")) +
              host.vm_up(0, W, Credentials("vm-w", "wrong")))
    assert got == [Authorize(PORT, V, GRANT)]
    assert switch.sessions[(PORT, W)].state == "held" and host.vms[W].state == "held"


def test_a_rejected_mac_is_held_then_tried_again():
    host, switch = Proxy(TesPeer), Authenticator()
    assert run(host, switch, Radius(), 0, host.vm_up(0, W, Credentials("vm-w", "wrong"))) == []
    assert switch.on_eapol(1, PORT, W, Eapol(EapolType.START)) == []  # quiet period: ignored
    switch.tick(HELD_PERIOD + 1)
    again = host.tick(HELD_PERIOD + 1)
    assert [(e.src, e.frame.type) for e in again] == [(W, EapolType.START)]
    asked = switch.on_eapol(HELD_PERIOD + 1, PORT, W, again[0].frame)
    assert [a.frame.eap.type for a in asked] == [eap.TYPE_IDENTITY]  # heard again


def test_logoff_when_the_vm_goes():
    host, switch = Proxy(TesPeer), Authenticator()
    run(host, switch, Radius(), 0, host.vm_up(0, V, Credentials("vm-v", "s3cret")))
    bye = host.vm_down(V)
    assert [e.frame.type for e in bye] == [EapolType.LOGOFF] and bye[0].src == V
    assert run(host, switch, Radius(), 1, bye) == [Deauthorize(PORT, V, "logoff")]
    assert (PORT, V) not in switch.sessions


def test_mab_only_when_allowed():
    assert Authenticator(mab=False).on_data(0, PORT, V) == []
    switch = Authenticator(mab=True)
    ask = switch.on_data(0, PORT, V)
    assert ask == [AskRadius((PORT, V), "02000000000a", None, None, mab=True, tag=1)] and mab_name(V) == "02000000000a"
    assert switch.on_data(0.1, PORT, V) == []  # one attempt at a time
    assert switch.on_radius(0.2, (PORT, V), Radius(mab_allowed={"02000000000a"})(ask[0])) == [Authorize(PORT, V, GRANT)]


def test_disconnect_and_coa():
    host, switch = Proxy(TesPeer), Authenticator()
    run(host, switch, Radius(), 0, host.vm_up(0, V, Credentials("vm-v", "s3cret")))
    slower = Provisioning(vn="n2", rate_down_bps=1_000_000)
    assert switch.change(V, slower) == [Authorize(PORT, V, slower)]
    assert switch.change("02:00:00:00:00:77", slower) == []  # unknown MAC: CoA-NAK
    assert switch.disconnect(V) == [Deauthorize(PORT, V, "disconnect")]
    assert switch.disconnect(V) == []


def test_session_timeout_reauthenticates_without_cutting_traffic():
    host, switch = Proxy(TesPeer), Authenticator()
    radius = Radius()
    grant = Provisioning(vn="n2", session_timeout=30)
    radius_with_timeout = lambda ask: (lambda a: RadiusAnswer(a.code, a.eap, a.state, grant if a.provisioning else None))(radius(ask))  # noqa: E731
    assert run(host, switch, radius_with_timeout, 0, host.vm_up(0, V, Credentials("vm-v", "s3cret"))) == [Authorize(PORT, V, grant)]
    ask = switch.tick(31)
    assert len(ask) == 1 and ask[0].frame.eap.type == eap.TYPE_IDENTITY
    assert switch.sessions[(PORT, V)].state == "authorized"  # still forwarding while asked again
    assert run(host, switch, radius_with_timeout, 31, ask) == []  # same grant: nothing to re-apply


def test_stale_or_forged_eap_responses_are_ignored():
    host, switch = Proxy(TesPeer), Authenticator()
    switch.on_eapol(0, PORT, V, host.vm_up(0, V, Credentials("vm-v", "s3cret"))[0].frame)
    forged = eap.identity_response(switch.sessions[(PORT, V)].eap_id + 1, "vm-v")
    assert switch.on_eapol(0, PORT, V, of_eap(forged)) == [Noted(RelayEvent.STALE, V)]
    assert switch.on_eapol(0, PORT, W, of_eap(forged)) == []  # no session for that MAC at all


# -- the relay's timers and duplicates (eap_relay.py), every timer without sleeping ---------

def identity_request(actions):
    sent = [a for a in actions if isinstance(a, SendEapol)]
    assert len(sent) == 1 and sent[0].frame.eap.code is eap.EapCode.REQUEST
    return sent[0].frame.eap


def started(switch, now=0.0, mac=V):
    return identity_request(switch.on_eapol(now, PORT, mac, Eapol(EapolType.START)))


def respond(switch, now, req, data=b"vm-v", mac=V):
    return switch.on_eapol(now, PORT, mac, of_eap(eap.EapPacket(eap.EapCode.RESPONSE, req.identifier, req.type, data)))


def test_an_unanswered_request_is_sent_again_backing_off_then_the_attempt_ends_with_nothing_kept():
    """3 s, then 6 s, then 12 s (hostapd's back-off from 3 s, doubling), maxReq = 2: the
    silent supplicant is given up 21 s after the request, with EAP-Failure and no state."""
    switch = Authenticator()
    req = started(switch)
    assert switch.tick(2.99) == []
    again = switch.tick(3.0)
    assert again == [Noted(RelayEvent.RETRANSMIT, V), SendEapol(PORT, V, of_eap(req))]
    assert switch.tick(8.99) == [] and switch.tick(9.0)[1] == SendEapol(PORT, V, of_eap(req))
    assert switch.tick(20.99) == []
    end = switch.tick(21.0)
    assert end[0] == Noted(RelayEvent.SUPPLICANT_TIMEOUT, V)
    assert [a.frame.eap.code for a in end if isinstance(a, SendEapol)] == [eap.EapCode.FAILURE]
    assert not switch.sessions  # no session left behind, not even held
    assert identity_request(switch.on_eapol(22, PORT, V, Eapol(EapolType.START)))  # heard again at once


def test_a_supplicant_that_stops_mid_exchange_is_never_authorized():
    switch, radius = Authenticator(), Radius()
    ask = respond(switch, 0.1, started(switch))
    challenge = switch.on_radius(0.2, (PORT, V), radius(ask[0]), ask[0].tag)
    assert identity_request(challenge).type == eap.TYPE_MD5
    out = switch.tick(0.2 + 3) + switch.tick(0.2 + 9) + switch.tick(0.2 + 21)
    assert [a.frame.eap.type for a in out if isinstance(a, SendEapol)] == [eap.TYPE_MD5, eap.TYPE_MD5, None]
    assert not switch.sessions and not any(isinstance(a, (Authorize, AskRadius)) for a in out)
    assert switch.on_radius(30, (PORT, V), RadiusAnswer("accept", provisioning=GRANT), ask[0].tag) == []  # late: ignored


def test_a_duplicate_response_is_relayed_once_and_an_older_one_dropped():
    switch, radius = Authenticator(), Radius()
    req = started(switch)
    first = respond(switch, 0.1, req)
    assert [type(a) for a in first] == [AskRadius]
    assert respond(switch, 0.2, req) == [Noted(RelayEvent.DUPLICATE, V)]  # RADIUS not answered yet
    challenge = identity_request(switch.on_radius(0.3, (PORT, V), radius(first[0]), first[0].tag))
    assert respond(switch, 0.4, req) == [Noted(RelayEvent.STALE, V)]  # an answer to the old request
    host = Proxy(TesPeer)
    host.vm_up(0, V, Credentials("vm-v", "s3cret"))
    md5 = host.on_eapol(0.5, V, "02:5e:00:00:00:01", of_eap(challenge))[0].frame
    ask = switch.on_eapol(0.5, PORT, V, md5)
    assert switch.on_eapol(0.6, PORT, V, md5) == [Noted(RelayEvent.DUPLICATE, V)]
    assert switch.on_radius(0.7, (PORT, V), radius(ask[0]), ask[0].tag) == [
        SendEapol(PORT, V, of_eap(eap.EapPacket(eap.EapCode.SUCCESS, challenge.identifier, None))), Authorize(PORT, V, GRANT)]


def test_a_lost_answer_is_recovered_by_the_retransmission():
    """The supplicant's Response is lost; the repeated Request gets the same answer again
    (RFC 3748 §4.3), which is relayed once."""
    host, switch = Proxy(TesPeer), Authenticator()
    start = host.vm_up(0, V, Credentials("vm-v", "s3cret"))
    req = switch.on_eapol(0, PORT, V, start[0].frame)
    host.on_eapol(0, V, "02:5e:00:00:00:01", req[0].frame)  # its answer never arrives
    again = [a for a in switch.tick(3.0) if isinstance(a, SendEapol)]
    assert run(host, switch, Radius(), 3.0, again) == [Authorize(PORT, V, GRANT)]


def test_a_server_failure_mid_exchange_restarts_without_a_failure_or_a_hold():
    """The supplicant did nothing wrong: no EAP-Failure, no quiet period, a fresh
    Request-Identity (whose Access-Request the RADIUS client may send to another server)."""
    host, switch, radius = Proxy(TesPeer), Authenticator(), Radius()
    req = switch.on_eapol(0, PORT, V, host.vm_up(0, V, Credentials("vm-v", "s3cret"))[0].frame)
    ask = [a for a in run_until_ask(host, switch, radius, 0, req)]
    assert eap.decode(ask[0].eap).type == eap.TYPE_MD5  # mid-exchange: the MD5 answer is with RADIUS
    out = switch.on_radius(4.0, (PORT, V), RadiusAnswer("error", error="RADIUS unavailable: no reply"), ask[0].tag)
    assert out[:2] == [Noted(RelayEvent.SERVER_TIMEOUT, V, "RADIUS unavailable: no reply"), Noted(RelayEvent.RESTART, V)]
    fresh = identity_request(out)
    assert fresh.type == eap.TYPE_IDENTITY and switch.sessions[(PORT, V)].state == "connecting"
    assert run(host, switch, radius, 4.1, out[2:]) == [Authorize(PORT, V, GRANT)]  # the next server answers


def run_until_ask(host, switch, radius, now, pending):
    """Carry frames and answers until the switch asks RADIUS about something not an identity."""
    pending = list(pending)
    while pending:
        item = pending.pop(0)
        if isinstance(item, SendEapol):
            pending += [e for e in host.on_eapol(now, item.dst, "02:5e:00:00:00:01", item.frame)]
        elif isinstance(item, Emit):
            pending += switch.on_eapol(now, PORT, item.src, item.frame)
        elif isinstance(item, AskRadius):
            if eap.decode(item.eap).type != eap.TYPE_IDENTITY:
                return [item]
            pending += switch.on_radius(now, item.key, radius(item), item.tag)
    raise AssertionError("the switch never asked RADIUS beyond the identity")


def test_restarts_after_server_failures_are_bounded():
    switch, radius = Authenticator(), Radius()
    req, now = started(switch), 0.0
    for restart in range(switch.timers.server_restarts + 1):
        ask = respond(switch, now, req)
        challenge = identity_request(switch.on_radius(now, (PORT, V), radius(ask[0]), ask[0].tag))
        ask = respond(switch, now, challenge, b"\x10" + bytes(16))
        now += 4
        out = switch.on_radius(now, (PORT, V), RadiusAnswer("error", error="down"), ask[0].tag)
        if restart < switch.timers.server_restarts:
            req = identity_request(out)
    assert out == [Noted(RelayEvent.SERVER_TIMEOUT, V, "down")] and not switch.sessions


def test_no_server_answering_the_first_request_drops_the_attempt_silently():
    """The RADIUS client tried every server for the first Access-Request: nobody can answer.
    No EAP-Failure (the supplicant would hold itself for 60 s), no hold here either."""
    switch = Authenticator()
    ask = respond(switch, 0, started(switch))
    assert switch.on_radius(4, (PORT, V), RadiusAnswer("error", error="down"), ask[0].tag) == [
        Noted(RelayEvent.SERVER_TIMEOUT, V, "down")]
    assert not switch.sessions and identity_request(switch.on_eapol(5, PORT, V, Eapol(EapolType.START)))


def test_server_timeout_is_the_backstop_when_no_answer_ever_comes():
    switch = Authenticator()
    ask = respond(switch, 0, started(switch))
    assert switch.tick(29.9) == []
    assert switch.tick(30.0) == [Noted(RelayEvent.SERVER_TIMEOUT, V, "no answer from RADIUS in 30 s")]
    assert switch.on_radius(31, (PORT, V), RadiusAnswer("accept", provisioning=GRANT), ask[0].tag) == []


def test_an_answer_to_an_attempt_started_over_is_ignored():
    switch, radius = Authenticator(), Radius()
    old = respond(switch, 0, started(switch))
    req = started(switch, 0.5)  # EAPOL-Start again while RADIUS is asked
    new = respond(switch, 0.6, req)
    assert switch.on_radius(0.7, (PORT, V), RadiusAnswer("reject"), old[0].tag) == []  # the old attempt's
    assert switch.sessions[(PORT, V)].state == "authenticating"
    assert identity_request(switch.on_radius(0.8, (PORT, V), radius(new[0]), new[0].tag)).type == eap.TYPE_MD5


def test_an_authorized_mac_keeps_its_authorization_through_a_server_outage():
    """Server dead: keep authorized. Re-authentication fails on the server's side: the MAC
    keeps forwarding and is asked again `server_retry` later; a Reject still ends it."""
    host, switch = Proxy(TesPeer), Authenticator()
    grant = Provisioning(vn="n2", session_timeout=30)
    radius = lambda ask: (lambda a: RadiusAnswer(a.code, a.eap, a.state, grant if a.provisioning else None))(Radius()(ask))  # noqa: E731
    run(host, switch, radius, 0, host.vm_up(0, V, Credentials("vm-v", "s3cret")))
    ask = run_until_ask(host, switch, radius, 30, switch.tick(30))
    out = switch.on_radius(34, (PORT, V), RadiusAnswer("error", error="down"), ask[0].tag)
    assert out == [Noted(RelayEvent.SERVER_TIMEOUT, V, "down")]  # no Deauthorize, no EAP-Failure
    s = switch.sessions[(PORT, V)]
    assert s.state == "authorized" and s.provisioning == grant and s.reauth_at == 34 + switch.timers.server_retry
    assert switch.tick(93.9) == [] and identity_request(switch.tick(94))
    mab = Authenticator(mab=True)
    ask = mab.on_data(0, PORT, W)
    mab.on_radius(0, (PORT, W), RadiusAnswer("accept", provisioning=grant), ask[0].tag)
    again = mab.tick(30)
    assert [type(a) for a in again] == [AskRadius]
    assert mab.on_radius(34, (PORT, W), RadiusAnswer("error", error="down"), again[0].tag) == [
        Noted(RelayEvent.SERVER_TIMEOUT, W, "down")]
    assert mab.sessions[(PORT, W)].state == "authorized"


def test_a_supplicant_silent_on_re_authentication_loses_its_authorization():
    host, switch = Proxy(TesPeer), Authenticator()
    grant = Provisioning(vn="n2", session_timeout=30)
    radius = lambda ask: (lambda a: RadiusAnswer(a.code, a.eap, a.state, grant if a.provisioning else None))(Radius()(ask))  # noqa: E731
    run(host, switch, radius, 0, host.vm_up(0, V, Credentials("vm-v", "s3cret")))
    switch.tick(30)
    out = switch.tick(33) + switch.tick(39) + switch.tick(51)
    assert Deauthorize(PORT, V, "no answer to re-authentication") in out and not switch.sessions


def test_too_many_rounds_end_in_a_failure():
    switch = Authenticator(timers=Timers(max_rounds=3))
    req = started(switch)
    for _ in range(3):
        ask = respond(switch, 0, req)
        req = identity_request(switch.on_radius(0, (PORT, V), RadiusAnswer(
            "challenge", eap.encode(eap.EapPacket(eap.EapCode.REQUEST, (req.identifier + 1) % 256, 13, b"\x20")), b"st"),
            ask[0].tag))
    out = respond(switch, 0, req)
    assert [a.frame.eap.code for a in out if isinstance(a, SendEapol)] == [eap.EapCode.FAILURE]
    assert switch.sessions[(PORT, V)].state == "held"


def test_eap_tls_sized_packets_are_relayed_whole_both_ways():
    """EAP-TLS fragments fill the port's MTU: 1500 - 4 (EAPOL header) = 1496 bytes of EAP."""
    switch = Authenticator()
    req = started(switch)
    big = eap.EapPacket(eap.EapCode.RESPONSE, req.identifier, 13, b"\xc0" + bytes(range(256)) * 5 + bytes(1490 - 1280))
    body = eap.encode(big)
    assert len(body) == 1496
    ask = switch.on_eapol(0, PORT, V, Eapol(EapolType.EAP, body))
    assert ask[0].eap == body
    challenge = eap.encode(eap.EapPacket(eap.EapCode.REQUEST, 77, 13, b"\x40" + bytes(1490)))
    out = switch.on_radius(0.1, (PORT, V), RadiusAnswer("challenge", challenge, b"st"), ask[0].tag)
    wire = eapol.frame(V, "02:5e:00:00:00:01", out[0].frame)
    assert len(wire) == 1514 and eapol.unframe(wire)[2].body == challenge  # a full 1500-byte MTU frame
    assert switch.tick(3.1)[1].frame.body == challenge  # and sent again whole


def test_the_proxy_starts_again_when_the_switch_falls_silent_mid_exchange():
    """The switch dropped the attempt (RADIUS unreachable) without an EAP-Failure: after
    authPeriod the host's supplicant says EAPOL-Start again instead of waiting for ever."""
    from tenet.agent.proxy8021x import AUTH_PERIOD
    host = Proxy(TesPeer)
    host.vm_up(0, V, Credentials("vm-v", "s3cret"))
    host.on_eapol(1, V, "02:5e:00:00:00:01", of_eap(eap.EapPacket(eap.EapCode.REQUEST, 5, eap.TYPE_IDENTITY, b"")))
    assert host.tick(1 + AUTH_PERIOD - 0.1) == []
    assert [e.frame.type for e in host.tick(1 + AUTH_PERIOD)] == [EapolType.START]
