"""RADIUS accounting (RFC 2866/2869): packets, their retransmission and failover, the sessions'
ledger and counters' table, and the accountant over loopback UDP with a stand-in server."""
from __future__ import annotations

import json
import random
import re
import socket
import struct
import threading
import time

import pytest
from pyrad import packet
from pyrad.dictionary import Dictionary

from tenet.aaa import accounting as acct
from tenet.aaa.accounting import AccountingError, AccountingRecord, PortType, Status, TerminateCause, Usage
from tenet.aaa.accounting_outbox import Outbox, Outcome, Server, Transmit
from tenet.aaa.provisioning import Provisioning, from_attributes
from tenet.aaa.radius import DICTIONARY
from tenet.agent import session_counters as sc
from tenet.agent.accountant import Accountant, servers_of
from tenet.agent.accounting import Ledger, Subject, dot1x_cause, nvo3_cause, of_authorization, of_session, session_id
from tenet.agent.admission import Session
from tenet.agent.config import Accounting, ConfigError, config_of
from tenet.wire.discovery import ReasonCode

SECRET = b"s3cret"
MAC = "02:00:00:00:0a:01"


def record(status=Status.START, **kw) -> AccountingRecord:
    base = dict(status=status, session_id="1a2b3c4d65f00000", event_time=1_700_000_000, nas_identifier="h1",
                nas_ip="198.18.0.1", user_name="alice", calling_station_id="02-00-00-00-0A-01", nas_port_id="tp1",
                framed_ip="10.60.0.10")
    if status is not Status.START:
        base.update(session_time=42, usage=Usage(input_octets=5 * 2**32 + 7, output_octets=9, input_packets=3,
                                                  output_packets=2))
    if status is Status.STOP:
        base.update(cause=TerminateCause.USER_REQUEST)
    base.update(kw)
    return AccountingRecord(**base)


# -- packets ---------------------------------------------------------------------------
def test_a_start_is_signed_and_carries_what_rfc_2866_asks():
    raw = acct.encode(record(), 7, SECRET)
    assert raw[0] == 4 and raw[1] == 7 and struct.unpack("!H", raw[2:4])[0] == len(raw)
    assert acct.request_authentic(raw, SECRET) and not acct.request_authentic(raw, b"other")
    d = acct.decode(raw)
    assert d.one("ACCT_STATUS_TYPE") == 1 and d.one("ACCT_SESSION_ID") == "1a2b3c4d65f00000"
    assert (d.one("USER_NAME"), d.one("CALLING_STATION_ID"), d.one("NAS_IDENTIFIER")) == ("alice", "02-00-00-00-0A-01", "h1")
    assert (d.one("NAS_IP_ADDRESS"), d.one("FRAMED_IP_ADDRESS"), d.one("NAS_PORT_ID")) == ("198.18.0.1", "10.60.0.10", "tp1")
    assert d.one("NAS_PORT_TYPE") == 15 and d.one("ACCT_AUTHENTIC") == 1 and d.one("EVENT_TIMESTAMP") == 1_700_000_000
    assert d.one("ACCT_DELAY_TIME") is None and d.one("ACCT_INPUT_OCTETS") is None  # a Start has no counts yet


def test_a_stop_splits_octets_into_gigawords_and_names_its_cause():
    d = acct.decode(acct.encode(record(Status.STOP), 1, SECRET))
    assert acct.octets(d.one("ACCT_INPUT_OCTETS"), d.one("ACCT_INPUT_GIGAWORDS")) == 5 * 2**32 + 7
    assert (d.one("ACCT_OUTPUT_OCTETS"), d.one("ACCT_OUTPUT_GIGAWORDS")) == (9, 0)
    assert (d.one("ACCT_INPUT_PACKETS"), d.one("ACCT_OUTPUT_PACKETS"), d.one("ACCT_SESSION_TIME")) == (3, 2, 42)
    assert d.one("ACCT_TERMINATE_CAUSE") == 1 and d.one("ACCT_STATUS_TYPE") == 2


def test_pyrad_reads_and_verifies_our_requests_as_a_server_would():
    raw = acct.encode(record(Status.INTERIM_UPDATE), 200, SECRET, delay=3)
    pkt = packet.AcctPacket(packet=raw, secret=SECRET, dict=Dictionary(str(DICTIONARY)))
    assert pkt.VerifyAcctRequest()
    assert pkt["Acct-Status-Type"] == [3] and pkt["Acct-Delay-Time"] == [3]
    assert pkt["Acct-Input-Gigawords"] == [5] and pkt["Acct-Session-Id"] == ["1a2b3c4d65f00000"]


def test_a_retransmission_is_a_new_packet_with_its_delay():
    first, again = acct.encode(record(), 1, SECRET), acct.encode(record(), 2, SECRET, delay=4)
    assert again[4:20] != first[4:20] and acct.request_authentic(again, SECRET)
    assert acct.decode(again).one("ACCT_DELAY_TIME") == 4


def test_only_the_real_response_is_authentic():
    req = acct.encode(record(), 9, SECRET)
    good = acct.response(req, SECRET)
    assert acct.response_authentic(good, req, SECRET)
    pyrad_reply = packet.AcctPacket(packet=req, secret=SECRET, dict=Dictionary(str(DICTIONARY))).CreateReply()
    assert acct.response_authentic(pyrad_reply.ReplyPacket(), req, SECRET)  # another implementation's, too
    forged = [
        acct.response(req, b"guess"),  # the wrong secret
        good[:1] + bytes([10]) + good[2:],  # another identifier
        bytes([2]) + good[1:],  # an Access-Accept's code
        good[:4] + bytes(16),  # no authenticator
        good[:19],  # truncated
        good + b"\x12\x03x",  # an attribute appended after signing
        acct.response(acct.encode(record(), 9, SECRET, delay=1), SECRET),  # answers another request
    ]
    assert not any(acct.response_authentic(f, req, SECRET) for f in forged)


@pytest.mark.parametrize("bad, why", [
    (dict(status=Status.START, cause=TerminateCause.USER_REQUEST), "only there"),
    (dict(status=Status.STOP, cause=None), "only there"),
    (dict(session_id=""), "required"),
    (dict(user_name="x" * 254), "253"),
    (dict(framed_ip="10.0.0.1/24"), "IPv4"),
])
def test_a_bad_record_is_refused_with_its_cause(bad, why):
    with pytest.raises(AccountingError, match=why):
        acct.encode(record(**bad), 1, SECRET)


def test_usage_is_never_negative():
    with pytest.raises(AccountingError, match="input_octets"):
        Usage(input_octets=-1)


# -- retransmission and failover -------------------------------------------------------
def outbox(servers=2, **kw) -> Outbox:
    return Outbox(tuple(Server(f"198.18.0.{i + 1}") for i in range(servers)), SECRET, rng=random.Random(1), **kw)


def sent(actions) -> list[Transmit]:
    return [a for a in actions if isinstance(a, Transmit)]


def fates(actions) -> list[Outcome]:
    return [a for a in actions if isinstance(a, Outcome)]


def test_an_answered_request_is_acknowledged_once():
    box = outbox()
    (t,) = sent(box.submit(0.0, record()))
    assert t.server == 0 and not t.retransmission
    (o,) = fates(box.on_response(0.01, 0, acct.response(t.data, SECRET)))
    assert o.acked and o.server == 0 and o.rtt == pytest.approx(0.01)
    assert box.on_response(0.02, 0, acct.response(t.data, SECRET)) == [] and box.size == 0


def test_retransmissions_back_off_carry_their_delay_and_any_answer_counts():
    box = outbox(first_timeout=1.0, max_timeout=3.0)
    (t1,) = sent(box.submit(0.0, record()))
    assert box.tick(0.5) == []
    (t2,) = sent(box.tick(1.2))
    assert t2.retransmission and t2.server == 0 and t2.data[1] != t1.data[1]
    assert acct.decode(t2.data).one("ACCT_DELAY_TIME") == 1
    assert box.tick(2.5) == []  # the timeout doubled (2 s ± 10 %)
    (t3,) = sent(box.tick(3.5))
    assert acct.decode(t3.data).one("ACCT_DELAY_TIME") == 3
    assert box.on_response(3.6, 0, acct.response(t1.data, SECRET)) == []  # two transmissions ago: forgotten
    (o,) = fates(box.on_response(3.6, 0, acct.response(t2.data, SECRET)))  # the previous one's late answer
    assert o.acked and box.size == 0 and box.inflight == {}


def test_forged_answers_change_nothing():
    box = outbox()
    (t,) = sent(box.submit(0.0, record()))
    assert box.on_response(0.1, 0, acct.response(t.data, b"wrong")) == []
    assert box.on_response(0.1, 1, acct.response(t.data, SECRET)) == []  # from the other server
    assert box.size == 1


def test_a_dead_primary_fails_over_and_is_tried_again_after_its_dead_time():
    box = outbox(first_timeout=1.0, max_timeout=1.0, tries=2, dead_time=10.0)
    (t,) = sent(box.submit(0.0, record()))
    sent(box.tick(1.2))  # the second try on the primary
    (moved,) = sent(box.tick(2.4))
    assert moved.server == 1 and moved.retransmission
    (o,) = fates(box.on_response(2.5, 1, acct.response(moved.data, SECRET)))
    assert o.acked and o.server == 1
    (t,) = sent(box.submit(3.0, record(Status.STOP)))
    assert t.server == 1  # the primary is dead for 10 s
    (t,) = sent(box.submit(13.0, record(Status.STOP)))
    assert t.server == 0  # and then tried first again
    assert box.busy == [1, 1] and len(box.flying) == 2 and len(box.inflight) == 2


def test_with_every_server_dead_a_record_is_dropped_at_its_age_limit():
    box = outbox(servers=1, first_timeout=1.0, max_timeout=2.0, max_age=10.0)
    box.submit(0.0, record())
    out: list = []
    now = 0.0
    while now < 12.0:
        now += 0.5
        out += box.tick(now)
    assert len(sent(out)) >= 4
    (o,) = fates(out)
    assert not o.acked and o.reason == "no answer" and box.size == 0 and box.inflight == {} and box.flying == {}
    assert box.busy == [0]


def test_a_full_queue_gives_up_interims_before_starts_and_stops():
    box = outbox(capacity=3)
    box.submit(0.0, record())
    box.submit(0.0, record(Status.INTERIM_UPDATE))
    box.submit(0.0, record(Status.STOP))
    assert box.size == 3
    (dropped,) = fates(box.submit(0.0, record(Status.INTERIM_UPDATE)))
    assert dropped.reason == "queue full" and dropped.record.status is Status.INTERIM_UPDATE


def test_a_full_queue_evicts_a_waiting_interim_for_a_stop():
    box = outbox(servers=1, capacity=130)
    assert len(sent(sum((box.submit(0.0, record()) for _ in range(128)), []))) == 128  # in flight: at most 128
    assert sent(box.submit(0.0, record(Status.INTERIM_UPDATE)) + box.submit(0.0, record())) == []  # these wait
    (dropped,) = fates(box.submit(0.0, record(Status.STOP)))
    assert dropped.record.status is Status.INTERIM_UPDATE
    assert [p.record.status for p in box.waiting] == [Status.START, Status.STOP]


# -- the ledger --------------------------------------------------------------------------
def subject(key=("nvo3", 0x1A2B3C4D), interim=None, **kw) -> Subject:
    return Subject(key, "alice", MAC, "tp1", "tp1", interim=interim, **kw)


def test_start_interims_and_stop_of_one_session():
    led = Ledger("h1", "198.18.0.1", interim=60, interim_min=60)
    start = led.open(100.0, 1_700_000_000, subject(), "1a2b3c4d6553f100")
    assert start.status is Status.START and start.session_id == "1a2b3c4d6553f100" and start.usage is None
    assert led.due(159.0) == [] and [a.session_id for a in led.due(160.0)] == ["1a2b3c4d6553f100"]
    upd = led.interim_update(160.5, 1_700_000_060, ("nvo3", 0x1A2B3C4D), Usage(100, 200, 1, 2))
    assert upd.status is Status.INTERIM_UPDATE and upd.session_time == 60 and upd.session_id == start.session_id
    assert led.due(219.0) == [] and led.due(220.0)  # on the interval's grid, not drifting
    a = led.take(("nvo3", 0x1A2B3C4D))
    stop = led.stop(a, 190.0, 1_700_000_090, TerminateCause.ADMIN_RESET, Usage(300, 400, 3, 4))
    assert (stop.status, stop.cause, stop.session_time, stop.usage.output_octets) == (Status.STOP, TerminateCause.ADMIN_RESET, 90, 400)
    assert led.take(("nvo3", 0x1A2B3C4D)) is None


def test_radius_interval_overrides_ours_above_the_floor():
    led = Ledger("h1", interim=600, interim_min=60)
    assert led.interval(subject(interim=120)) == 120
    assert led.interval(subject(interim=5)) == 60  # RFC 2869 §5.16: no less than the floor
    assert led.interval(subject()) == 600
    assert Ledger("h1", interim=0, interim_min=60).interval(subject()) == 0
    assert Ledger("h1", interim=0, interim_min=1).interval(subject(interim=2)) == 2  # a lab's


def test_a_reauthorization_opens_nothing_but_takes_the_new_interval():
    led = Ledger("h1", interim=60, interim_min=1)
    assert led.open(0.0, 1, subject(), "aa") is not None
    assert led.open(5.0, 6, subject(interim=10), "bb") is None
    a = led.accounts[("nvo3", 0x1A2B3C4D)]
    assert a.session_id == "aa" and a.interval == 10 and a.next_interim == 15.0


def test_a_resumed_session_keeps_its_id_and_time_and_sends_no_start():
    led = Ledger("h1", interim=60, interim_min=60)
    led.resume(1000.0, 1_700_000_500, subject(), "1a2b3c4d6553f100", 1_700_000_000, phase=0.5)
    a = led.accounts[("nvo3", 0x1A2B3C4D)]
    assert a.next_interim == 1030.0
    upd = led.interim_update(1030.0, 1_700_000_530, a.subject.key, Usage())
    assert upd.session_time == 530 and upd.session_id == "1a2b3c4d6553f100"


def test_terminate_causes():
    assert nvo3_cause(ReasonCode.SHUTDOWN) is TerminateCause.USER_REQUEST
    assert nvo3_cause(ReasonCode.KEEPALIVE_TIMEOUT) is TerminateCause.LOST_CARRIER
    assert nvo3_cause(ReasonCode.ADMIN) is TerminateCause.ADMIN_RESET
    assert nvo3_cause(ReasonCode.PORT_GONE) is TerminateCause.LOST_CARRIER
    assert nvo3_cause(ReasonCode.REAUTH_FAILED) is TerminateCause.REAUTHENTICATION_FAILURE
    assert dot1x_cause("logoff") is TerminateCause.USER_REQUEST
    assert dot1x_cause("disconnect") is TerminateCause.ADMIN_RESET
    assert dot1x_cause("access rejected") is TerminateCause.REAUTHENTICATION_FAILURE


def test_subjects_of_admissions():
    p = Provisioning(vn="n1", ip="10.60.0.40/24", acct_interim=300, radius_class="0102,ff")
    s = of_session(Session(0x1A2B3C4D, "udp:198.18.2.2:5000", MAC, "n1", 6001, "attached", 0.0, identity="bob",
                           provisioning=p, tunnel_vni=0xABC))
    assert (s.key, s.port, s.nas_port_id, s.port_type) == (("nvo3", 0x1A2B3C4D), "tna000abc", "udp:198.18.2.2:5000",
                                                           PortType.VIRTUAL)
    assert (s.framed_ip, s.classes, s.interim) == ("10.60.0.40", (b"\x01\x02", b"\xff"), 300)
    d = of_authorization("ts1", MAC, "020000000a01", Provisioning(vn="n2"))
    assert d.key == ("dot1x", "ts1", MAC) and d.port_type is PortType.ETHERNET and d.classes == ()
    assert session_id(("nvo3", 0x1A2B3C4D), 0x6553F100, 99) == "1a2b3c4d6553f100"
    assert session_id(("dot1x", "ts1", MAC), 0x6553F100, 0xBEEF) == "0000beef6553f100"


def test_the_access_accept_gives_the_interval_and_classes():
    p = from_attributes({"Acct-Interim-Interval": [120], "Class": [b"\x01\x02", b"abc"]})
    assert p.acct_interim == 120 and p.radius_class == "0102,616263"


# -- the counters' table -----------------------------------------------------------------
def counted(sid="1a2b3c4d6553f100", port="tp1", mac=MAC) -> sc.Counted:
    return sc.Counted(sid, port, mac, 1_700_000_000, "alice")


def test_a_new_session_gets_counters_maps_and_chains_on_its_present_port():
    script = sc.plan("tenet_acct0", [counted()], sc.Observed(), frozenset({"tp1"}))
    assert "add table netdev tenet_acct0" in script
    assert 'add counter netdev tenet_acct0 c1a2b3c4d6553f100_i { comment "tp1 02:00:00:00:0a:01 1700000000 616c696365"; }' in script
    assert 'type filter hook ingress device "tp1" priority -270' in script
    assert 'type filter hook egress device "tp1" priority 0' in script
    assert "add rule netdev tenet_acct0 ci_tp1 counter name ether saddr map @mi_tp1" in script
    assert "add rule netdev tenet_acct0 co_tp1 counter name ether daddr map @mo_tp1" in script
    assert 'add element netdev tenet_acct0 mo_tp1 { 02:00:00:00:0a:01 : "c1a2b3c4d6553f100_o" }' in script


def test_plan_is_idempotent_and_undone_when_the_session_goes():
    state = sc.after("t", [counted()], sc.Observed(), frozenset({"tp1"}))
    assert sc.plan("t", [counted()], state, frozenset({"tp1"})) == ""
    gone = sc.plan("t", [], state, frozenset({"tp1"})).splitlines()
    assert gone == ["delete element netdev t mi_tp1 { 02:00:00:00:0a:01 }",
                    "delete element netdev t mo_tp1 { 02:00:00:00:0a:01 }",
                    "delete chain netdev t ci_tp1", "delete chain netdev t co_tp1",
                    "delete map netdev t mi_tp1", "delete map netdev t mo_tp1",
                    "delete counter netdev t c1a2b3c4d6553f100_i", "delete counter netdev t c1a2b3c4d6553f100_o"]


def test_a_port_not_there_yet_gets_counters_and_its_chains_when_it_comes():
    tunnel = counted(port="tna000abc")
    state = sc.after("t", [tunnel], sc.Observed(), frozenset())
    assert state.chains == frozenset() and tunnel.in_name in state.counters
    later = sc.plan("t", [tunnel], state, frozenset({"tna000abc"}))
    assert 'hook ingress device "tna000abc"' in later and "add element netdev t mi_tna000abc" in later


def test_a_second_mac_on_a_switch_port_shares_its_chains():
    first, second = counted(port="ts1"), counted("00000bee6553f100", "ts1", "02:00:00:00:0b:0b")
    state = sc.after("t", [first], sc.Observed(), frozenset({"ts1"}))
    script = sc.plan("t", [first, second], state, frozenset({"ts1"}))
    assert "add chain" not in script and "add map" not in script
    assert 'add element netdev t mi_ts1 { 02:00:00:00:0b:0b : "c00000bee6553f100_i" }' in script


LISTING = {"nftables": [
    {"metainfo": {"version": "1.0.6"}},
    {"table": {"family": "netdev", "name": "tenet_acct0", "handle": 1}},
    {"counter": {"family": "netdev", "name": "c1a2b3c4d6553f100_i", "table": "tenet_acct0", "handle": 1,
                 "comment": "tp1 02:00:00:00:0a:01 1700000000 616c696365", "packets": 10, "bytes": 10280}},
    {"counter": {"family": "netdev", "name": "c1a2b3c4d6553f100_o", "table": "tenet_acct0", "handle": 2,
                 "comment": "tp1 02:00:00:00:0a:01 1700000000 616c696365", "packets": 11, "bytes": 10462}},
    {"map": {"family": "netdev", "name": "mi_tp1", "table": "tenet_acct0", "type": "ether_addr", "handle": 3,
             "map": "counter", "elem": [["02:00:00:00:0a:01", "c1a2b3c4d6553f100_i"]]}},
    {"chain": {"family": "netdev", "table": "tenet_acct0", "name": "ci_tp1", "handle": 4, "type": "filter",
               "hook": "ingress", "prio": -270, "policy": "accept"}},
]}


def test_the_listing_read_back_gives_usage_in_ethernet_frames_and_the_sessions_to_resume():
    seen = sc.parse(json.dumps(LISTING))
    assert seen.exists and seen.chains == {"ci_tp1"} and seen.maps["mi_tp1"] == {MAC: "c1a2b3c4d6553f100_i"}
    assert sc.usage(seen.counters, counted()) == Usage(input_octets=10280 + 14 * 10, output_octets=10462,
                                                       input_packets=10, output_packets=11)
    assert sc.recorded(seen) == (counted(),)


def test_only_sane_names_become_nft_names():
    with pytest.raises(ValueError):
        sc.Counted("1A2B", "tp1", MAC, 0)
    with pytest.raises(ValueError):
        sc.Counted("1a2b", "tp1", "not-a-mac", 0)
    odd = sc.Counted("1a2b", "eth0.5", MAC, 0)
    assert not odd.countable and sc.plan("t", [odd], sc.Observed(exists=True), frozenset({"eth0.5"})) == ""


# -- config ---------------------------------------------------------------------------------
BASE = 'host = "h"\nstore = "sqlite:///x"\nuplink = "eth0"\nnetwork = "pn"\n'


def test_the_agent_config_reads_accounting_keys_and_names_bad_ones():
    c = config_of(BASE + '[radius]\nserver = "198.18.0.5:1812"\nsecret_file = "/s"\ninterim = 5\ninterim_min = 1\n')
    assert c.accounting == Accounting(1813, 5, 1)
    assert config_of(BASE).accounting == Accounting()
    with pytest.raises(ConfigError) as e:
        config_of(BASE + '[radius]\nserver = "198.18.0.5:1812"\nsecret_file = "/s"\ninterim = -1\ninterim_min = 0\n'
                  'accounting_port = 70000\n')
    assert all(k in str(e.value) for k in ("radius.interim:", "radius.interim_min", "radius.accounting_port"))


def test_accounting_servers_follow_the_radius_servers_in_order():
    assert servers_of("198.18.0.5:1812", 1813) == (Server("198.18.0.5", 1813),)
    assert servers_of("198.18.0.5:1812,198.18.0.6:1812", 1813) == (Server("198.18.0.5"), Server("198.18.0.6"))


# -- the accountant, over loopback UDP ----------------------------------------------------
class FakeTable:
    """The kernel's counters as the accountant would find them: what its scripts made, with the
    counts a test sets."""

    def __init__(self) -> None:
        self.counters: dict[str, tuple[int, int, str]] = {}
        self.scripts: list[str] = []
        self.others: dict[str, dict[str, tuple[int, int, str]]] = {}  # other tables' counters
        self.dropped: list[str] = []

    def observe(self, table: str = "") -> sc.Observed:
        counters = self.others[table] if table else self.counters
        return sc.Observed(bool(counters), dict(counters))

    def tables(self) -> list[str]:
        return ["t", *self.others]

    def drop(self, table: str) -> None:
        self.dropped.append(table)
        del self.others[table]

    def apply(self, script: str) -> None:
        self.scripts.append(script)
        for name, comment in re.findall(r'add counter netdev \S+ (\S+) \{ comment "([^"]*)"', script):
            self.counters[name] = (0, 0, comment)
        for name in re.findall(r"delete counter netdev \S+ (\S+)", script):
            del self.counters[name]

    def read(self, sessions) -> dict:
        return dict(self.counters)


class StandIn:
    """A RADIUS accounting server on loopback: records every request, answers when `answer`."""

    def __init__(self, answer: bool = True) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.answer, self.got, self.done = answer, [], threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.done.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, socket.timeout):
                continue
            if acct.request_authentic(data, SECRET):
                self.got.append(acct.decode(data))
                if self.answer:
                    self.sock.sendto(acct.response(data, SECRET), peer)

    def close(self) -> None:
        self.done.set()
        self.thread.join(2)
        self.sock.close()


def run_until(accountant: Accountant, done, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not done() and time.monotonic() < end:
        accountant._pass()
    assert done()


def test_the_accountant_starts_updates_and_stops_a_session_with_its_counts():
    server, table = StandIn(), FakeTable()
    a = Accountant(servers=(Server("127.0.0.1", server.port),), secret=SECRET, nas_identifier="h1", table="t",
                   interim=1, interim_min=1, counters=table)
    a.installed = table.observe()
    a.restore_done()
    try:
        a.opened(subject(("dot1x", "ts1", MAC)))
        run_until(a, lambda: len(server.got) == 1)
        start = server.got[0]
        sid = start.one("ACCT_SESSION_ID")
        assert start.one("ACCT_STATUS_TYPE") == 1 and re.fullmatch(r"[0-9a-f]{16}", sid)
        assert f"c{sid}_i" in table.counters
        table.counters[f"c{sid}_i"] = (10, 1000, "")
        table.counters[f"c{sid}_o"] = (5, 700, "")
        run_until(a, lambda: len(server.got) == 2, 3.0)
        upd = server.got[1]
        assert upd.one("ACCT_STATUS_TYPE") == 3 and upd.one("ACCT_INPUT_OCTETS") == 1140 and upd.one("ACCT_SESSION_ID") == sid
        a.closed(("dot1x", "ts1", MAC), TerminateCause.USER_REQUEST)
        run_until(a, lambda: len(server.got) == 3)
        stop = server.got[2]
        assert (stop.one("ACCT_STATUS_TYPE"), stop.one("ACCT_TERMINATE_CAUSE"), stop.one("ACCT_OUTPUT_OCTETS")) == (2, 1, 700)
        assert table.counters == {}  # its counters went with it
        run_until(a, lambda: a.metrics.accounting.labels("stop", "acknowledged")._value.get() == 1)
        # answers wait for the next pass (every 0.2 s), but their round trip is the kernel's stamp's
        assert a.metrics.accounting_rtt._sum.get() / 3 < 0.1
    finally:
        server.close()


def test_a_dead_accounting_server_costs_admission_nothing():
    server = StandIn(answer=False)
    a = Accountant(servers=(Server("127.0.0.1", server.port),), secret=SECRET, nas_identifier="h1", table="t",
                   counters=FakeTable())
    a.outbox.first_timeout, a.outbox.max_age = 0.05, 1.0
    a.restore_done()
    try:
        t0 = time.perf_counter()
        for i in range(1000):
            a.opened(Subject(("nvo3", i + 1), "alice", f"02:00:00:00:{i >> 8:02x}:{i & 255:02x}", "tp1", "tp1"))
        assert time.perf_counter() - t0 < 0.5  # a queue put each, whatever the server does
        run_until(a, lambda: a.metrics.accounting.labels("start", "dropped")._value.get() == 1000, 10.0)
        assert a.outbox.size == 0 and a.metrics.accounting_retransmissions._value.get() > 0
    finally:
        server.close()


def test_a_restarted_shard_resumes_its_sessions_and_closes_the_ones_gone():
    server, table = StandIn(), FakeTable()
    kept, gone = counted("1a2b3c4d6553f100", "tp1", MAC), counted("00000bee6553f100", "ts1", "02:00:00:00:0b:0b")
    for c, counts in ((kept, (3, 300)), (gone, (4, 400))):
        table.counters[c.in_name] = (*counts, c.comment())
        table.counters[c.out_name] = (*counts, c.comment())
    a = Accountant(servers=(Server("127.0.0.1", server.port),), secret=SECRET, nas_identifier="h1", table="t",
                   counters=table)
    a.installed = table.observe()
    a.recovered = {(c.port, c.mac): c for c in sc.recorded(a.installed)}
    try:
        a.restored(subject(("nvo3", 0x1A2B3C4D)))  # on tp1 with MAC: the same session
        a.restore_done()
        run_until(a, lambda: len(server.got) == 1)
        (stop,) = server.got
        assert (stop.one("ACCT_STATUS_TYPE"), stop.one("ACCT_SESSION_ID"), stop.one("ACCT_TERMINATE_CAUSE")) == \
            (2, "00000bee6553f100", TerminateCause.NAS_REQUEST)
        assert stop.one("ACCT_INPUT_OCTETS") == 400 + 14 * 4 and stop.one("USER_NAME") == "alice"
        assert a.ledger.accounts[("nvo3", 0x1A2B3C4D)].session_id == "1a2b3c4d6553f100"  # resumed: no Start
        assert set(table.counters) == {kept.in_name, kept.out_name}
    finally:
        server.close()


def restored_accountant():
    """An accountant past its restore, sending to a stand-in server, counting in a fake table."""
    server, table = StandIn(), FakeTable()
    a = Accountant(servers=(Server("127.0.0.1", server.port),), secret=SECRET, nas_identifier="h1", table="t",
                   counters=table)
    a.restore_done()
    return server, table, a


def test_a_session_admission_forgot_is_closed_after_two_looks():
    server, table, a = restored_accountant()
    try:
        a.opened(subject(("nvo3", 7)))
        a.live(frozenset())
        run_until(a, lambda: len(server.got) == 1)
        assert ("nvo3", 7) in a.ledger.accounts  # once is not enough: its event may be on its way
        a.live(frozenset())
        run_until(a, lambda: len(server.got) == 2)
        assert server.got[1].one("ACCT_TERMINATE_CAUSE") == TerminateCause.NAS_REQUEST
    finally:
        server.close()


def test_a_tes_that_starts_over_on_its_port_ends_its_old_session():
    server, table, a = restored_accountant()
    try:
        a.opened(subject(("nvo3", 7)))
        a.opened(subject(("nvo3", 8)))  # same port and MAC, a new session id
        run_until(a, lambda: len(server.got) == 3)
        kinds = sorted((d.one("ACCT_STATUS_TYPE"), d.one("ACCT_TERMINATE_CAUSE")) for d in server.got)
        assert kinds == [(1, None), (1, None), (2, TerminateCause.SUPPLICANT_RESTART)]
        assert list(a.ledger.accounts) == [("nvo3", 8)]
    finally:
        server.close()


# -- the topology and the lab's FreeRADIUS -------------------------------------------------
TOPOLOGY = """
name: acctcfg
underlay:
  networks:
    pn1: {subnet: 198.18.1.0/24}
hosts:
  host1: {network: pn1}
networks:
  n1: {vnid: 5001, subnet: 10.1.0.0/24}
aaa:
  users:
    alice: {password: pw, network: n1, interim: 300}
    bob: {password: pw, network: n1}
"""


def test_a_users_interim_is_its_access_accepts_acct_interim_interval():
    import yaml

    from tenet.aaa.config import render
    from tenet.model.load import intent_to_doc, load_intent

    i = load_intent(yaml.safe_load(TOPOLOGY))
    assert {u.name: u.interim for u in i.aaa} == {"alice": 300, "bob": 0}
    assert load_intent(intent_to_doc(i)) == i
    users = render(i.aaa, "s", "198.18.1.5", 1812, ["198.18.0.0/15"], "/run/x")["users"]
    alice, bob = users.split("\n\n")[:2]
    assert "Acct-Interim-Interval := 300" in alice and "Acct-Interim-Interval" not in bob


def test_a_bad_interim_is_named():
    import yaml

    from tenet.model.errors import IntentError
    from tenet.model.load import load_intent

    doc = yaml.safe_load(TOPOLOGY)
    doc["aaa"]["users"]["bob"]["interim"] = -5
    with pytest.raises(IntentError) as e:
        load_intent(doc)
    assert [p.path for p in e.value.problems] == ["aaa.users.bob.interim"]


def test_the_labs_control_block_sets_the_agents_intervals():
    from tenet.lab.control import Control, control_of
    from tenet.model.errors import IntentError

    c = control_of({"control": {"interim_min": 1, "interim": 5}})
    assert (c.interim, c.interim_min) == (5, 1) and Control.from_dict(c.to_dict()) == c
    assert (Control().accounting, Control().interim, Control().interim_min) == (True, 60, 60)
    off = control_of({"control": {"accounting": False}})
    assert not off.accounting and Control.from_dict(off.to_dict()) == off
    with pytest.raises(IntentError) as e:
        control_of({"control": {"interim_min": 0, "interim": "60"}})
    assert [p.path for p in e.value.problems] == ["control.interim", "control.interim_min"]


def test_incremental_plans_add_up_to_the_full_one():
    """What the accountant does each pass — plan only the ports that changed, merge the result
    into its model — ends where planning every session from scratch ends, whatever the order."""
    rng = random.Random(7)
    ports = ["tp1", "tp2", "ts1", "tna000abc"]
    present = frozenset(ports[:3])  # the access tunnel is not there: counters, but no chains yet
    live: dict[str, sc.Counted] = {}
    state = sc.Observed()
    for step in range(300):
        changed: set[str] = set()
        names: set[str] = set()
        for _ in range(rng.randint(1, 4)):
            if live and rng.random() < 0.45:
                c = live.pop(rng.choice(sorted(live)))
            else:
                c = sc.Counted(f"{step:08x}{rng.getrandbits(32):08x}", rng.choice(ports),
                               f"02:00:00:00:00:{rng.randrange(256):02x}", 1_700_000_000)
                if any((o.port, o.mac) == (c.port, c.mac) for o in live.values()):
                    continue
                live[c.session_id] = c
            changed.add(c.port)
            names |= {c.in_name, c.out_name}
        desired = [c for c in live.values() if c.port in changed]
        names |= {n for c in desired for n in (c.in_name, c.out_name)}
        seen = sc.part(state, changed, names)
        assert all(line.startswith(("add ", "delete ")) for line in sc.plan("t", desired, seen, present).splitlines())
        state = sc.merge(state, sc.after("t", desired, seen, present), changed, names)
    assert sc.plan("t", list(live.values()), state, present) == ""
    assert state == sc.after("t", list(live.values()), sc.Observed(), present)


def test_shard_0_closes_the_sessions_of_shards_no_longer_there():
    server, table = StandIn(), FakeTable()
    gone = counted("00000bee6553f100", "ts1", "02:00:00:00:0b:0b")
    table.others = {"tenet_acct2": {gone.in_name: (2, 100, gone.comment()), gone.out_name: (1, 50, gone.comment())},
                    "tenet_acct0": {}, "tenet": {}, "tenet_acctx": {}}
    a = Accountant(servers=(Server("127.0.0.1", server.port),), secret=SECRET, nas_identifier="h1", table="tenet_acct0",
                   counters=table, sweep_from=2)
    try:
        a.stopping.set()  # run() does its start-up work, then returns
        a.run()
        assert table.dropped == ["tenet_acct2"]
        a.stopping.clear()
        run_until(a, lambda: len(server.got) == 1)
        (stop,) = server.got
        assert (stop.one("ACCT_SESSION_ID"), stop.one("ACCT_TERMINATE_CAUSE"), stop.one("ACCT_INPUT_OCTETS")) == \
            ("00000bee6553f100", TerminateCause.NAS_REQUEST, 100 + 14 * 2)
    finally:
        server.close()
