"""A registered host is down only after its Alive key has been gone for the grace."""
from tenet.controller.liveness import Liveness


def test_down_after_the_grace_and_up_again_at_once():
    live = Liveness(grace=10)
    reg = frozenset({"h1", "h2"})
    assert live.update(0, reg, frozenset({"h1", "h2"})) == frozenset()
    assert live.update(1, reg, frozenset({"h1"})) == frozenset()  # h2's lease lapsed: grace starts
    assert live.next_due() == 11
    assert live.update(10.9, reg, frozenset({"h1"})) == frozenset()
    assert live.update(11, reg, frozenset({"h1"})) == frozenset({"h2"})
    assert live.update(12, reg, frozenset({"h1", "h2"})) == frozenset()  # re-registered: up at once
    assert live.next_due() is None


def test_unregistered_hosts_are_never_down():
    live = Liveness(grace=0)
    assert live.update(0, frozenset({"h1"}), frozenset()) == frozenset({"h1"})
    assert live.update(1, frozenset(), frozenset()) == frozenset()  # h1's chassis removed: not a host we watch


def test_no_due_time_for_a_host_already_down():
    """The leader waits on its watch until the next due time: a host already declared down
    must not keep that time in the past (the leader would pass without ever reading its watch)."""
    live = Liveness(grace=1.0)
    assert live.update(0.0, frozenset({"a"}), frozenset()) == frozenset()
    assert live.next_due() == 1.0
    assert live.update(1.5, frozenset({"a"}), frozenset()) == frozenset({"a"})
    assert live.next_due() is None
