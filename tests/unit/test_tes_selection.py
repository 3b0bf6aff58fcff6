"""The adaptive offer window: the TES takes an offer at once when no better one can come, and
waits the whole window otherwise. A scripted link on a fake clock: nothing sleeps."""
from __future__ import annotations

import pytest

from tenet.tes.client import Attachment, AuthFailed, Config, Tes
from tenet.tes.selection import CAPABILITY_MAX, KNOWN_TTL, Offer, default_policy, settled
from tenet.wire.discovery import Message, MsgType, NveType, Tlv, TlvType

AS, HV = NveType.ACCESS_SWITCH, NveType.HYPERVISOR
WINDOW = 0.02


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedLink:
    """Answers each DISCOVER with the scripted OFFERs (delay after the DISCOVER, NVE, type,
    capability), delivered in time order as the fake clock reaches them; a REQUEST gets
    nothing, or with `reject` a CONFIRM and a failed AUTH_RESULT."""
    mac, ip = "02:00:00:00:00:aa", ""

    def __init__(self, clock: Clock, script: list[tuple[float, str, NveType, int]], nves: tuple[str, ...] = ()) -> None:
        self.clock, self.script, self.nves = clock, script, list(nves)
        self.reject = False
        self.queue: list[tuple[float, str, Message]] = []
        self.sent: list[tuple[str, Message]] = []

    def send(self, dst: str, msg: Message) -> None:
        self.sent.append((dst, msg))
        if msg.type is MsgType.DISCOVER:
            uniq = msg.get(TlvType.HOST_UNIQ)
            self.queue = sorted(
                (self.clock.now + delay, nve, Message(MsgType.OFFER, 0, 6001, (
                    Tlv(TlvType.HOST_UNIQ, uniq), Tlv(TlvType.NVE_TYPE, kind), Tlv(TlvType.NVE_CAPABILITY, cap))))
                for delay, nve, kind, cap in self.script)
        elif msg.type is MsgType.REQUEST and self.reject:
            uniq = msg.get(TlvType.HOST_UNIQ)
            self.queue = [(self.clock.now, dst, Message(MsgType.CONFIRM, 7, 6001, (Tlv(TlvType.HOST_UNIQ, uniq),))),
                          (self.clock.now, dst, Message(MsgType.AUTH_RESULT, 7, 6001, (Tlv(TlvType.AUTH_STATUS, 1),)))]

    def recv(self, timeout: float) -> tuple[str, Message] | None:
        if self.queue and self.queue[0][0] <= self.clock.now + timeout:
            at, src, msg = self.queue.pop(0)
            self.clock.now = max(self.clock.now, at)
            return src, msg
        self.clock.now += timeout
        return None

    def attached(self, nve, result) -> None: ...
    def detached(self) -> None: ...


def tes(script, policy="default", nves=(), **cfg) -> tuple[Tes, ScriptedLink, Clock]:
    clock = Clock()
    link = ScriptedLink(clock, script, nves)
    return Tes(link, Config("n1", 0, "alice", "wonderland", offer_window=WINDOW, policy=policy, **cfg), clock), link, clock


def discover(t: Tes, clock: Clock) -> tuple[list[Offer], float]:
    """The offers and how long the TES waited for them."""
    start = clock.now
    offers = t.discover()
    return offers, clock.now - start


def test_first_policy_returns_at_the_first_offer():
    t, _, clock = tes([(0.001, "h1", HV, 100), (0.002, "h4", AS, 10)], policy="first")
    offers, waited = discover(t, clock)
    assert [o.nve for o in offers] == ["h1"] and waited == pytest.approx(0.001)


def test_an_access_switch_at_the_ceiling_is_taken_at_once():
    t, _, clock = tes([(0.001, "h4", AS, CAPABILITY_MAX), (0.002, "h1", HV, 100)])
    offers, waited = discover(t, clock)
    assert [o.nve for o in offers] == ["h4"] and waited == pytest.approx(0.001)
    # a lower ceiling (--capability-ceiling) makes a weaker access switch good enough
    t, _, clock = tes([(0.001, "h4", AS, 10), (0.002, "h1", HV, 100)], capability_ceiling=10)
    assert discover(t, clock)[1] == pytest.approx(0.001)


def test_a_hypervisor_offer_waits_the_window_and_a_later_access_switch_wins():
    t, _, clock = tes([(0.001, "h1", HV, 100), (0.010, "h4", AS, 10)])
    offers, waited = discover(t, clock)
    assert waited == pytest.approx(WINDOW) and len(offers) == 2
    assert default_policy(offers).nve == "h4"  # seed 004: the switch, whatever the hypervisor's capability


def test_when_every_known_nve_has_offered_the_tes_takes_it_at_once():
    t, link, clock = tes([(0.001, "h1", HV, 100)])
    assert discover(t, clock)[1] == pytest.approx(WINDOW)  # nothing known: the whole window, learning {h1}
    assert discover(t, clock)[1] == pytest.approx(0.001)


def test_a_known_nve_that_does_not_offer_costs_the_whole_window():
    t, link, clock = tes([(0.001, "h1", HV, 100), (0.002, "h4", AS, 10)])
    discover(t, clock)  # learns {h1, h4}
    assert t.known.nves == {"h1", "h4"}
    link.script = [(0.001, "h1", HV, 100)]  # h4 is gone
    offers, waited = discover(t, clock)
    assert [o.nve for o in offers] == ["h1"] and waited == pytest.approx(WINDOW)


def test_what_is_known_expires():
    t, _, clock = tes([(0.001, "h1", HV, 100)])
    discover(t, clock)
    clock.now += KNOWN_TTL - 0.1
    assert discover(t, clock)[1] == pytest.approx(0.001)  # a short window does not refresh it…
    clock.now += 0.2
    assert discover(t, clock)[1] == pytest.approx(WINDOW)  # …so it expires KNOWN_TTL after the full one
    assert discover(t, clock)[1] == pytest.approx(0.001)


def test_configured_unicast_nves_are_exactly_those_that_can_offer():
    t, _, clock = tes([(0.001, "198.18.0.1", HV, 100)], nves=("198.18.0.1",))
    assert discover(t, clock)[1] == pytest.approx(0.001)  # from the first discovery on
    t, _, clock = tes([(0.001, "198.18.0.1", HV, 100)], nves=("198.18.0.1", "198.18.0.2"))
    assert discover(t, clock)[1] == pytest.approx(WINDOW)


def test_a_failed_request_forgets_what_is_known():
    t, link, clock = tes([(0.001, "h1", HV, 100)])
    discover(t, clock)
    assert t.known.nves == {"h1"}
    t.cfg.request_retries, stops = 1, iter([False, True])
    assert t.attach(lambda: next(stops)) is None  # h1 offers at once, but never CONFIRMs
    assert sum(m.type is MsgType.REQUEST for _, m in link.sent) == 1
    assert not t.known.nves
    assert discover(t, clock)[1] == pytest.approx(WINDOW)


def test_a_failed_authentication_forgets_what_is_known():
    t, link, clock = tes([(0.001, "h1", HV, 100)])
    discover(t, clock)
    link.reject = True
    with pytest.raises(AuthFailed):
        t.attach()
    assert not t.known.nves


def test_an_nve_that_stops_answering_is_forgotten():
    t, link, clock = tes([(0.001, "h1", HV, 100)])
    discover(t, clock)
    t.attachment = Attachment("h1", 7, 6001, 1.0, {})
    assert t.keepalive(lambda: False) == "nve-silent" and not t.known.nves


def test_settled_rule():
    h1, h4 = Offer("h1", HV, 100, 1, 0), Offer("h4", AS, 10, 1, 1)
    assert not settled("default", [], frozenset({"h1"}))
    assert not settled("default", [h1, h4], frozenset())  # nothing known, nobody at the ceiling
    assert settled("default", [h1, h4], frozenset({"h1", "h4"}))
    assert not settled("default", [h1], frozenset({"h1", "h4"}))
    assert settled("default", [h4], frozenset(), ceiling=10) and not settled("default", [h1], frozenset(), ceiling=10)
    assert settled("first", [h1], frozenset())
