"""Controller replicas: one leads, the others take over when its lease lapses or it resigns;
a deposed leader's writes are refused by the store; generations never go backwards across a
failover; the Observed record says honestly how far the tables reflect the inputs. Every test
runs against SQLite and a real etcd (conftest.py's `url`)."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tenet.controller.fence import Deposed, Fence
from tenet.controller.leadership import TTL, Candidate, Role
from tenet.controller.observed import Witness, reflects, through
from tenet.controller.publish import publish
from tenet.model.load import intent_to_doc, load_file
from tenet.store.intent import write_intent
from tenet.store import keys, published
from tenet.store.records import EndpointReport, HostTables, Leader, Observed

EXAMPLE = Path(__file__).parents[2] / "examples" / "datacenter.yaml"
SLACK = 1.5  # seconds beyond the TTL: etcd expires leases from a loop, SQLite's reaper looks every 50 ms


@pytest.fixture
def candidates(url):
    made: list[Candidate] = []

    def make(name: str) -> Candidate:
        made.append(Candidate(url, name))
        return made[-1]

    yield make
    for c in made:
        c.step_down("test over")
        c.close()


def _vacancy_within(candidate: Candidate, seconds: float) -> float:
    """Run await_vacancy; how long it took (fails past `seconds`)."""
    stopping = threading.Event()
    t0 = time.monotonic()
    t = threading.Thread(target=candidate.await_vacancy, args=(stopping,))
    t.start()
    t.join(seconds)
    stopping.set()
    t.join()
    took = time.monotonic() - t0
    assert took < seconds, f"no vacancy seen within {seconds}s"
    return took


def _tables(store) -> dict[str, HostTables]:
    hosts = [keys.tables_host(kv.key) for kv in store.range(keys.hosts_prefix()) if keys.tables_host(kv.key)]
    return {h: published.read(store, h) for h in hosts}


def _seed(store):
    intent = load_file(EXAMPLE)
    write_intent(store, intent)
    return intent


def test_one_leads_and_a_resignation_hands_over_at_once(candidates, store):
    a, b = candidates("a"), candidates("b")
    term = a.campaign()
    assert term is not None and a.role is Role.LEADING and a.leading()
    assert b.campaign() is None and b.role is Role.FOLLOWING
    kv = store.get(keys.controller_leader())
    assert Leader.from_json(kv.value).name == "a" and kv.create_revision == term.fence.term
    done = threading.Timer(0.3, a.step_down, args=("resigning",))
    done.start()
    took = _vacancy_within(b, 5)
    assert took < 0.3 + 0.5, "a revoked lease frees the key at once, not after the TTL"
    second = b.campaign()
    assert second is not None and second.fence.term > term.fence.term and not a.leading()


def test_tenet_controllers_shows_the_leader_its_term_and_observed(candidates, url, store):
    """What an operator sees of a deployment (no lab): the Leader record and the term."""
    from typer.testing import CliRunner

    from tenet.cli.main import app

    def shown() -> dict:
        r = CliRunner().invoke(app, ["controllers", "--store", url, "--json"])
        assert r.exit_code == 0, r.output
        return json.loads(r.output)

    assert shown()["leader"] is None and shown()["term"] == 0
    a = candidates("a")
    term = a.campaign()
    s = shown()
    assert s["leader"]["name"] == "a" and s["term"] == term.fence.term and s["revision"] == store.revision()
    Witness("a", term.fence).saw(store, store.revision())
    assert shown()["observed"] >= s["revision"]
    text = CliRunner().invoke(app, ["controllers", "--store", url]).output
    assert f"leader a (pid {s['leader']['pid']})" in text and f"term {term.fence.term}" in text
    a.step_down("test")
    assert shown()["leader"] is None


def test_a_lapsed_lease_hands_over_within_its_ttl(candidates):
    """The leader stops renewing (as if killed): the key goes TTL seconds after the last
    renewal, and the follower, watching it, takes over then — not at the next poll."""
    a, b = candidates("a"), candidates("b")
    assert a.campaign() is not None
    time.sleep(1.0)  # a few renewals: the lease outlives its first TTL
    assert a.leading()
    a.keeper.stop()  # silence, like SIGKILL
    t0 = time.monotonic()
    _vacancy_within(b, TTL + SLACK)
    assert time.monotonic() - t0 >= TTL - a.every - 0.2  # not before the lease could lapse
    assert b.campaign() is not None


def test_a_deposed_leaders_writes_are_refused(candidates, url, store):
    """a leads and publishes; its lease goes (expired, say) and b leads. a still holds its old
    term: every write it tries — tables, allocations, the Observed record — is refused whole,
    and b's tables stand."""
    _seed(store)
    a, b = candidates("a"), candidates("b")
    old = a.campaign()
    publish(store, fence=old.fence)
    store.revoke(old.lease)  # the lease is gone, as after a lapse; a does not know yet
    new = b.campaign()
    assert new is not None
    before = _tables(store)
    mine = publish(store, fence=new.fence)
    assert mine == before  # nothing changed: b wrote nothing, generations continue as they were
    rev = store.revision()
    doc = json.loads(store.get(keys.tenancy()).value)
    doc["vms"]["L"]["host"] = "host1"
    store.put(keys.tenancy(), json.dumps(doc).encode())
    with pytest.raises(Deposed):
        publish(store, fence=old.fence)
    with pytest.raises(Deposed):
        Witness("a", old.fence).saw(store, rev)
    assert store.revision() == rev + 1 and _tables(store) == before  # only the intent edit
    deadline = time.monotonic() + 3
    while a.leading() and time.monotonic() < deadline:  # its next renewal finds the lease gone
        time.sleep(0.05)
    assert not a.leading()
    after = publish(store, fence=new.fence)
    assert after["host3"].generation == before["host3"].generation + 1


def test_generations_never_go_backwards_across_failovers(candidates, store):
    """Three terms, each changing something: every host's generation is the previous one, or
    one more where its content changed; a new leader with nothing new writes nothing."""
    intent = _seed(store)
    host = next(h.name for h in intent.fabric.hosts if not h.switch)
    vn = intent.vns[0]
    history: list[dict[str, HostTables]] = []
    for i, name in enumerate(("a", "b", "c")):
        c = candidates(name)
        term = c.campaign()
        assert term is not None
        rev = store.revision()
        published = publish(store, fence=term.fence)
        if history:
            assert published == history[-1] and store.revision() == rev  # a new leader, nothing new: nothing written
        report = EndpointReport(vn=vn.name, vnid=vn.vnid, mac=f"02:12:00:00:00:0{i}", port=f"tv-x{i}", host=host)
        store.put(keys.endpoint(host, vn.name, report.mac), report.to_json())
        history.append(publish(store, fence=term.fence))
        c.step_down("next term")
    for before, after in zip(history, history[1:]):
        for h, t in after.items():
            old = before[h]
            assert t.generation == old.generation + (t.content_hash != old.content_hash)
    assert history[-1][host].generation == history[0][host].generation + 2
    assert _tables(store) == history[-1]


def test_observed_advances_only_when_there_is_news(store):
    """The record promises "every input up to R is published"; its own write, landing right
    after R, is covered too; with nothing new, nothing is written."""
    store.put(keys.tenancy(), b"{}")
    w = Witness("a")
    rev = store.revision()
    assert not reflects(store, rev)
    w.saw(store, rev)
    kv = store.get(keys.controller_observed())
    assert Observed.from_json(kv.value) == Observed(revision=rev, leader="a") and kv.mod_revision == rev + 1
    assert through(kv) == rev + 1 and reflects(store, store.revision())
    w.saw(store, rev + 1)  # its own write: already covered, nothing written
    assert store.revision() == rev + 1
    store.put(keys.status("h1"), b"{}")  # someone else's write it has seen
    store.put(keys.status("h2"), b"{}")  # ... and one it has not
    w.saw(store, rev + 2)
    kv = store.get(keys.controller_observed())
    assert kv.mod_revision == rev + 4 and through(kv) == rev + 2  # h2's write came between: not covered
    assert not reflects(store, rev + 3)


def _controller(url: str, name: str, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "tenet.controller.main", "--store", url, "--name", name],
                                stdout=out, stderr=subprocess.STDOUT)


def _wait(what, pred, seconds: float):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def test_controller_processes_fail_over_on_sigkill_and_hand_over_on_sigterm(url, store, tmp_path):
    """Two real controller processes. The leader publishes; SIGKILLed while an endpoint
    arrives, the other leads within the TTL (and a margin), publishes that endpoint with the
    generations carried on, and says so in Observed; SIGTERMed, it hands over at once."""
    intent = _seed(store)
    host, vn = next(h.name for h in intent.fabric.hosts if not h.switch), intent.vns[0]
    procs = {n: _controller(url, n, tmp_path / f"{n}.log") for n in ("c1", "c2")}
    try:
        def observed_by():
            kv = store.get(keys.controller_observed())
            return kv and reflects(store, store.get(keys.tenancy()).mod_revision) and Observed.from_json(kv.value).leader
        first = _wait("a first publication", observed_by, 20)
        other = "c2" if first == "c1" else "c1"
        before = _tables(store)
        procs[first].send_signal(signal.SIGKILL)
        procs[first].wait()
        killed = time.monotonic()
        report = EndpointReport(vn=vn.name, vnid=vn.vnid, mac="02:12:00:00:00:77", port="tv-x", host=host)
        rev = store.put(keys.endpoint(host, vn.name, report.mac), report.to_json())
        _wait("the other replica publishing", lambda: reflects(store, rev) and observed_by() == other, TTL + SLACK + 3)
        took = time.monotonic() - killed
        assert Leader.from_json(store.get(keys.controller_leader()).value).name == other
        after = _tables(store)
        assert after[host].generation == before[host].generation + 1
        assert any(e.destination == report.mac for t in after[host].vns for e in t.entries)
        assert all(after[h].generation == t.generation + (after[h].content_hash != t.content_hash) for h, t in before.items())
        assert took < TTL + SLACK + 3
        procs[first] = _controller(url, first, tmp_path / "restarted.log")  # back, as a follower
        _wait("the restarted replica following", lambda: f"following {other}" in (tmp_path / "restarted.log").read_text(), 10)
        t0 = time.monotonic()
        procs[other].send_signal(signal.SIGTERM)
        assert procs[other].wait(10) == 0
        _wait("a hand-over", lambda: (kv := store.get(keys.controller_leader())) and Leader.from_json(kv.value).name == first, 5)
        assert time.monotonic() - t0 < 1.5, "a resigning leader revokes its lease: no TTL to wait out"
        assert "stepping down" in (tmp_path / f"{other}.log").read_text()
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
