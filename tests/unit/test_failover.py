"""RADIUS failover (aaa/failover.py through RadiusMux): servers tried in order with their own
timeouts and retries, dead-time, return to the primary, and exchanges moved only when they
can be. Real UDP sockets on 127.0.0.1; the clock is the test's (every call takes `now`)."""
from __future__ import annotations

import select

import pytest

from radius_peer import SECRET, Peer
from tenet.aaa.failover import (
    Failover, RadiusPolicy, RadiusServer, ServerListError, ServerState, parse_servers,
)
from tenet.aaa.radius import RadiusClient, RadiusMux, RadiusReply, RadiusTimeout
from tenet.wire import eap

IDENTITY = eap.encode(eap.identity_response(1, "alice"))
RESPONSE = eap.encode(eap.md5_response(2, b"pw", b"0123456789abcdef"))
T = 1.0  # timeout per transmission
POLICY = RadiusPolicy(timeout=T, retries=1, dead_time=10.0)


@pytest.fixture
def peers():
    ps = [Peer(), Peer()]
    yield ps
    for p in ps:
        p.close()


def make(peers, policy=POLICY):
    client = RadiusClient(peers[0].server.ip, SECRET.decode(), peers[0].server.port)
    return RadiusMux(client, policy, [p.server for p in peers])


def answers(mux, now, wait=1.0):
    select.select([mux], [], [], wait)
    return mux.on_readable(now)


def primary_given_up(peers):
    """A mux whose first exchange timed out on the primary and was answered by the secondary."""
    a, b = peers
    mux = make(peers)
    mux.submit(0.0, "t1", "alice", IDENTITY, None)
    give_up_on(mux, a, 0.0)
    b.accept(b.request())
    assert len(answers(mux, 2.1)) == 1
    return mux


def give_up_on(mux, peer, start, first=None):
    """Let the request in flight to `peer` go unanswered: sent, retransmitted once, given up."""
    first = first or peer.request()
    assert mux.tick(start + T + 0.01) == []
    again = peer.request()
    assert again.raw == first.raw  # a retransmission is the same bytes
    return mux.tick(start + 2 * T + 0.02)


def test_a_first_packet_moves_to_the_next_server_and_the_dead_one_is_skipped(peers):
    a, b = peers
    mux = make(peers)
    mux.submit(0.0, "t1", "alice", IDENTITY, None)
    assert give_up_on(mux, a, 0.0) == []  # not an error: it moved on
    req = b.request()
    assert req.get(1) == b"alice"
    b.challenge(req, b"state-B")
    [(tag, reply)] = answers(mux, 2.1)
    assert tag == "t1" and reply.state == b"state-B"
    assert (mux.deaths, mux.failovers) == ({str(a.server): 1}, {str(a.server): 1})
    assert mux.failover.states()[a.server] is ServerState.DEAD
    mux.submit(3.0, "t2", "bob", IDENTITY, None)  # within the dead time: straight to b
    assert b.request().get(1) == b"bob" and a.nothing()
    mux.close()


def test_the_primary_is_probed_after_the_dead_time_and_used_again_once_it_answers(peers):
    a, b = peers
    mux = primary_given_up(peers)
    mux.tick(2.02 + 10.0 + 0.01)  # the dead time is over: a Status-Server goes to a
    probe = a.request()
    assert probe.code == 12 and probe.get(80) is not None  # Status-Server, with Message-Authenticator
    mux.submit(12.1, "t2", "bob", IDENTITY, None)  # still dead while the probe is out
    assert b.request().get(1) == b"bob"
    a.alive(probe)  # answered bare, as FreeRADIUS 3.2.1 does
    assert answers(mux, 12.2) == []  # a probe's answer is nobody's reply
    assert mux.failover.states()[a.server] is ServerState.ALIVE
    mux.submit(12.3, "t3", "carol", IDENTITY, None)
    assert a.request().get(1) == b"carol" and b.nothing()
    mux.close()


def test_an_unanswered_probe_keeps_the_server_dead_for_another_dead_time(peers):
    a, b = peers
    mux = primary_given_up(peers)
    start = 12.05
    mux.tick(start)
    assert a.request().code == 12
    mux.tick(start + T + 0.01)
    assert a.request().code == 12  # retransmitted like any request
    mux.tick(start + 2 * T + 0.02)
    assert mux.failover.states()[a.server] is ServerState.DEAD and mux.deaths[str(a.server)] == 1
    mux.submit(start + 3, "t2", "bob", IDENTITY, None)
    assert b.request().get(1) == b"bob" and a.nothing()
    mux.tick(start + 2 * T + 0.02 + 10.0 + 0.01)
    assert a.request().code == 12  # probed again
    mux.close()


def test_without_status_server_the_primary_is_simply_tried_after_the_dead_time(peers):
    a, b = peers
    mux = make(peers, RadiusPolicy(timeout=T, retries=1, dead_time=10.0, status_server=False))
    mux.submit(0.0, "t1", "alice", IDENTITY, None)
    give_up_on(mux, a, 0.0)
    b.request()
    mux.tick(12.1)
    assert a.nothing()  # no probe
    mux.submit(12.2, "t2", "bob", IDENTITY, None)
    assert a.request().get(1) == b"bob"
    mux.close()


def test_a_packet_carrying_state_stays_with_its_server_and_its_timeout_ends_the_exchange(peers):
    a, b = peers
    mux = make(peers)
    mux.submit(0.0, "t1", "alice", IDENTITY, None)
    a.challenge(a.request(), b"state-A")
    [(_, reply)] = answers(mux, 0.1)
    mux.submit(0.2, "t1", "alice", RESPONSE, reply.state)
    req = a.request()
    assert req.get(24) == b"state-A"
    [(tag, err)] = give_up_on(mux, a, 0.2, req)
    assert tag == "t1" and isinstance(err, RadiusTimeout)
    assert "cannot move to another server" in str(err) and str(a.server) in str(err)
    assert b.nothing() and not mux.failovers  # b never saw a State it could not know
    mux.submit(3.0, "t1", "alice", IDENTITY, None)  # the authenticator starts over: on b now
    assert b.request().get(24) is None
    mux.close()


def test_an_exchange_finishes_where_it_started_even_when_the_primary_returns(peers):
    a, b = peers
    mux = make(peers)
    mux.submit(0.0, "old", "alice", IDENTITY, None)
    give_up_on(mux, a, 0.0)
    b.challenge(b.request(), b"state-B")
    [(_, reply)] = answers(mux, 2.1)
    mux.failover.answered(0)  # the primary is back (a probe answered, say)
    mux.submit(2.2, ("old", 2), "alice", RESPONSE, reply.state)  # the caller's tag may change per round
    req = b.request()
    assert req.get(24) == b"state-B" and a.nothing()  # the State names the conversation
    b.accept(req)
    [(tag, done)] = answers(mux, 2.3)
    assert tag == ("old", 2) and done.code == "accept" and not mux.pins
    mux.submit(2.4, "new", "bob", IDENTITY, None)  # a new exchange: the primary
    assert a.request().get(1) == b"bob"
    mux.close()


def test_when_every_server_is_dead_each_is_tried_in_order_then_the_error_names_them(peers):
    a, b = peers
    mux = make(peers)
    mux.submit(0.0, "t1", "alice", IDENTITY, None)
    assert give_up_on(mux, a, 0.0) == []
    [(tag, err)] = give_up_on(mux, b, 2.02)
    assert tag == "t1" and isinstance(err, RadiusTimeout)
    assert f"no valid reply from RADIUS servers {a.server}, {b.server}" in str(err)
    mux.submit(5.0, "t2", "bob", IDENTITY, None)  # both marked dead: still tried, primary first
    assert a.request().get(1) == b"bob"
    mux.close()


def test_a_late_reply_from_the_server_given_up_on_is_not_taken(peers):
    a, b = peers
    mux = make(peers)
    mux.submit(0.0, "t1", "alice", IDENTITY, None)
    first = a.request()
    mux.tick(T + 0.01)
    a.request()
    mux.tick(2 * T + 0.02)  # moved to b
    a.accept(first)  # too late
    assert answers(mux, 2.1, wait=0.2) == []
    assert sum(n for (server, _), n in mux.dropped.items() if server == str(a.server)) == 1
    b.accept(b.request())
    [(tag, reply)] = answers(mux, 2.2)
    assert tag == "t1" and isinstance(reply, RadiusReply) and reply.code == "accept"
    mux.close()


def test_many_in_flight_on_each_server_without_a_thread(peers):
    """The many-in-flight design holds per server: 300 exchanges, 256 at once on the first
    socket, the rest as identifiers free up."""
    a, _ = peers
    mux = make(peers)
    for k in range(300):
        mux.submit(0.0, k, f"u{k}", IDENTITY, None)
    reqs = [a.request() for _ in range(256)]
    assert a.nothing() and len({r.id for r in reqs}) == 256
    for r in reqs[:44]:
        a.accept(r)
    got = []
    while len(got) < 44:
        got += answers(mux, 0.1)
    more = [a.request() for _ in range(44)]
    assert {r.get(1) for r in more} == {f"u{k}".encode() for k in range(256, 300)}
    mux.close()


def test_dynamic_authorization_is_accepted_from_every_configured_server(peers):
    mux = make(peers)
    assert mux.accepts("127.0.0.1") and not mux.accepts("198.18.0.9")
    mux.close()


@pytest.mark.parametrize("text, servers", [
    ("198.18.0.5:1812", (RadiusServer("198.18.0.5", 1812),)),
    ("198.18.0.5:1812,198.18.0.6:1645", (RadiusServer("198.18.0.5"), RadiusServer("198.18.0.6", 1645))),
    ("198.18.0.5", (RadiusServer("198.18.0.5", 1812),)),
    (["198.18.0.6:1812", " 198.18.0.5:1812"], (RadiusServer("198.18.0.6"), RadiusServer("198.18.0.5"))),
])
def test_server_lists(text, servers):
    assert parse_servers(text) == servers


@pytest.mark.parametrize("text, fragment", [
    ("", "give IP:PORT entries"),
    ("198.18.0.5:1812,", "give IP:PORT entries"),
    ("radius.example:1812", "'radius.example' is not an IPv4 address"),
    ("198.18.0.5:0", "port '0' is not 1..65535"),
    ("198.18.0.5:x", "port 'x' is not 1..65535"),
    ("198.18.0.5:1812,198.18.0.5:1812", "198.18.0.5:1812 is named twice"),
    ([], "give IP:PORT entries"),
])
def test_bad_server_lists_name_the_entry(text, fragment):
    with pytest.raises(ServerListError, match=fragment.replace(".", r"\.").replace("(", r"\(")):
        parse_servers(text)


@pytest.mark.parametrize("kw, fragment", [
    ({"timeout": 0}, "timeout 0 is not 0.01..60 s"),
    ({"retries": -1}, "retries -1 is not an integer 0..10"),
    ({"retries": 1.5}, "retries 1.5 is not an integer"),
    ({"dead_time": 7200}, "dead_time 7200 is not 0..3600 s"),
])
def test_bad_policies_name_the_value(kw, fragment):
    with pytest.raises(ValueError, match=fragment.replace(".", r"\.")):
        RadiusPolicy(**kw)


def test_a_dead_time_of_zero_never_skips_the_primary():
    f = Failover((RadiusServer("198.18.0.5"), RadiusServer("198.18.0.6")), RadiusPolicy(dead_time=0))
    assert not f.timed_out(1.0, 0) and f.pick(1.0) == 0 and f.pick(1.0, frozenset({0})) == 1
