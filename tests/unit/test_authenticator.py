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
from tenet.agent.proxy8021x import Credentials, Emit, Proxy
from tenet.wire import eap
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
            pending += switch.on_radius(now, item.key, radius(item))
        else:
            decided.append(item)
    return decided


def test_host_authenticates_a_new_vm_with_its_mac_and_the_switch_provisions_it():
    host, switch = Proxy(), Authenticator()
    start = host.vm_up(0, V, Credentials("vm-v", "s3cret"))
    assert start == [Emit(V, PAE_GROUP, start[0].frame)] and start[0].frame.type is EapolType.START
    assert run(host, switch, Radius(), 0, start) == [Authorize(PORT, V, GRANT)]
    assert host.vms[V].state == "authorized" and switch.sessions[(PORT, V)].state == "authorized"


def test_many_macs_on_one_port_each_on_its_own():
    host, switch = Proxy(), Authenticator()
    got = run(host, switch, Radius(), 0, host.vm_up(0, V, Credentials("vm-v", "s3cret")) +
              host.vm_up(0, W, Credentials("vm-w", "wrong")))
    assert got == [Authorize(PORT, V, GRANT)]
    assert switch.sessions[(PORT, W)].state == "held" and host.vms[W].state == "held"


def test_a_rejected_mac_is_held_then_tried_again():
    host, switch = Proxy(), Authenticator()
    assert run(host, switch, Radius(), 0, host.vm_up(0, W, Credentials("vm-w", "wrong"))) == []
    assert switch.on_eapol(1, PORT, W, Eapol(EapolType.START)) == []  # quiet period: ignored
    switch.tick(HELD_PERIOD + 1)
    again = host.tick(HELD_PERIOD + 1)
    assert [(e.src, e.frame.type) for e in again] == [(W, EapolType.START)]
    asked = switch.on_eapol(HELD_PERIOD + 1, PORT, W, again[0].frame)
    assert [a.frame.eap.type for a in asked] == [eap.TYPE_IDENTITY]  # heard again


def test_logoff_when_the_vm_goes():
    host, switch = Proxy(), Authenticator()
    run(host, switch, Radius(), 0, host.vm_up(0, V, Credentials("vm-v", "s3cret")))
    bye = host.vm_down(V)
    assert [e.frame.type for e in bye] == [EapolType.LOGOFF] and bye[0].src == V
    assert run(host, switch, Radius(), 1, bye) == [Deauthorize(PORT, V, "logoff")]
    assert (PORT, V) not in switch.sessions


def test_mab_only_when_allowed():
    assert Authenticator(mab=False).on_data(0, PORT, V) == []
    switch = Authenticator(mab=True)
    ask = switch.on_data(0, PORT, V)
    assert ask == [AskRadius((PORT, V), "02000000000a", None, None, mab=True)] and mab_name(V) == "02000000000a"
    assert switch.on_data(0.1, PORT, V) == []  # one attempt at a time
    assert switch.on_radius(0.2, (PORT, V), Radius(mab_allowed={"02000000000a"})(ask[0])) == [Authorize(PORT, V, GRANT)]


def test_disconnect_and_coa():
    host, switch = Proxy(), Authenticator()
    run(host, switch, Radius(), 0, host.vm_up(0, V, Credentials("vm-v", "s3cret")))
    slower = Provisioning(vn="n2", rate_down_bps=1_000_000)
    assert switch.change(V, slower) == [Authorize(PORT, V, slower)]
    assert switch.change("02:00:00:00:00:77", slower) == []  # unknown MAC: CoA-NAK
    assert switch.disconnect(V) == [Deauthorize(PORT, V, "disconnect")]
    assert switch.disconnect(V) == []


def test_session_timeout_reauthenticates_without_cutting_traffic():
    host, switch = Proxy(), Authenticator()
    radius = Radius()
    grant = Provisioning(vn="n2", session_timeout=30)
    radius_with_timeout = lambda ask: (lambda a: RadiusAnswer(a.code, a.eap, a.state, grant if a.provisioning else None))(radius(ask))  # noqa: E731
    assert run(host, switch, radius_with_timeout, 0, host.vm_up(0, V, Credentials("vm-v", "s3cret"))) == [Authorize(PORT, V, grant)]
    ask = switch.tick(31)
    assert len(ask) == 1 and ask[0].frame.eap.type == eap.TYPE_IDENTITY
    assert switch.sessions[(PORT, V)].state == "authorized"  # still forwarding while asked again
    assert run(host, switch, radius_with_timeout, 31, ask) == []  # same grant: nothing to re-apply


def test_stale_or_forged_eap_responses_are_ignored():
    host, switch = Proxy(), Authenticator()
    switch.on_eapol(0, PORT, V, host.vm_up(0, V, Credentials("vm-v", "s3cret"))[0].frame)
    forged = eap.identity_response(switch.sessions[(PORT, V)].eap_id + 1, "vm-v")
    assert switch.on_eapol(0, PORT, V, of_eap(forged)) == []
    assert switch.on_eapol(0, PORT, W, of_eap(forged)) == []  # no session for that MAC at all


def test_an_authorized_mac_outlives_a_radius_outage_at_reauthentication():
    """EAP and MAB alike: no answer from RADIUS is no verdict — no EAP-Failure, no
    Deauthorize; asked again after REAUTH_RETRY. A real Reject still deauthorizes."""
    from tenet.agent.authenticator import REAUTH_RETRY

    host, switch = Proxy(), Authenticator(mab=True)
    grant = Provisioning(vn="n2", session_timeout=30)
    radius = Radius(mab_allowed={"02000000000b"})
    timed = lambda ask: (lambda a: RadiusAnswer(a.code, a.eap, a.state, grant if a.provisioning else None))(radius(ask))  # noqa: E731
    run(host, switch, timed, 0, host.vm_up(0, V, Credentials("vm-v", "s3cret")))
    [ask] = switch.on_data(0, PORT, W)
    switch.on_radius(0.1, (PORT, W), timed(ask))
    down = RadiusAnswer("error", error="RADIUS unavailable: no valid reply")
    asks = switch.tick(31)
    mab = next(a for a in asks if isinstance(a, AskRadius))
    eap_ask = next(a for a in asks if isinstance(a, SendEapol))
    assert switch.on_radius(35, mab.key, down) == []
    relayed = host.on_eapol(31, eap_ask.dst, "02:5e:00:00:00:01", eap_ask.frame)
    [again] = switch.on_eapol(31, PORT, relayed[0].src, relayed[0].frame)
    assert switch.on_radius(35, again.key, down) == []
    for mac in (V, W):
        s = switch.sessions[(PORT, mac)]
        assert s.state == "authorized" and s.provisioning == grant and s.reauth_at == 35 + REAUTH_RETRY
    later = switch.tick(35 + REAUTH_RETRY)
    assert len(later) == 2  # both asked again
    assert switch.on_radius(66, (PORT, W), RadiusAnswer("reject")) == [Deauthorize(PORT, W, "access rejected")]
