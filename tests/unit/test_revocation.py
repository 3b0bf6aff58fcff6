"""A detach names its VN from the request to the session it ends: tenants reuse MACs, so
another tenant's TES with the same MAC on the same NVE keeps its session. Real store (SQLite),
the agent's own reading of the request, the real admission state machine."""
from __future__ import annotations

import random

import pytest

from tenet.aaa.provisioning import Provisioning
from tenet.agent.admission import AskRadius, Detach, Nve, RadiusAnswer, Send
from tenet.agent.admit import revocation_command
from tenet.compute.tables import Servable
from tenet.store import keys
from tenet.store.base import Put
from tenet.store.endpoints import NotAttached, revoke
from tenet.store.open import open_store
from tenet.store.records import EndpointReport, Revocation
from tenet.wire import eap
from tenet.wire.discovery import Message, MsgType, ReasonCode, Tlv, TlvType, NveType

MAC = "02:00:00:00:00:aa"  # both tenants' TES has it
PORTS = {"n1": "tp1", "n2": "tp2"}


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    s.txn([], [Put(keys.endpoint("h1", vn, MAC), EndpointReport(vn=vn, vnid=6000 + i, mac=MAC, port=PORTS[vn],
                                                                 host="h1", session=i).to_json())
               for i, vn in enumerate(("n1", "n2"), 1)])
    yield s
    s.close()


def nve_with_both() -> tuple[Nve, dict[str, int]]:
    """An NVE holding two attached sessions of one MAC: n1's (on tp1) and n2's (on tp2)."""
    n = Nve("h1", NveType.HYPERVISOR, 100, "198.18.1.10", {"tp1": "02:00:00:00:00:01", "tp2": "02:00:00:00:00:02"},
            (Servable("n1", 6001), Servable("n2", 6002)), rng=random.Random(1))
    sids = {}
    for vn, vnid in (("n1", 6001), ("n2", 6002)):
        acts = n.on_frame(0, PORTS[vn], MAC, Message(MsgType.REQUEST, 0, 0, (Tlv(TlvType.VN_NAME, vn),)))
        sid = next(a.msg.session_id for a in acts if isinstance(a, Send) and a.msg.type is MsgType.CONFIRM)
        ident = eap.encode(eap.identity_response(1, "alice"))
        acts = n.on_frame(0, PORTS[vn], MAC, Message(MsgType.EAP, sid, vnid, (Tlv(TlvType.EAP_PAYLOAD, ident),)))
        assert isinstance(acts[0], AskRadius)
        n.on_radius(0, sid, RadiusAnswer("accept", b"\x03\x01\x00\x04", provisioning=Provisioning(vn=vn)))
        sids[vn] = sid
    assert {s.vn for s in n.sessions.values() if s.state == "attached"} == {"n1", "n2"}
    return n, sids


def requests(store) -> list:
    """What shard 0 reads and hands its shards, as the agent does (admit.follow_revocations)."""
    return [revocation_command("h1", kv.key, kv.value) for kv in store.range(keys.revoke_prefix("h1"))]


def ended(n: Nve, cmds) -> set[str]:
    return {a.session.vn for c in cmds for a in n.revoke(c.mac, c.why, c.vn)
            if isinstance(a, Detach) and a.reason is ReasonCode.ADMIN}


def test_a_detach_in_one_vn_ends_that_session_only(store):
    assert revoke(store, MAC, "audit", {"n1"}) == ("h1",)
    cmds = requests(store)
    assert [(c.kind, c.mac, c.why, c.vn) for c in cmds] == [("revoke", MAC, "audit", "n1")]
    n, sids = nve_with_both()
    assert ended(n, cmds) == {"n1"}
    assert sids["n1"] not in n.sessions and n.sessions[sids["n2"]].state == "attached"


def test_the_operator_detaching_a_mac_everywhere_asks_once_per_vn(store):
    assert revoke(store, MAC.upper().replace(":", "-"), "all") == ("h1",)
    assert {kv.key: Revocation.from_json(kv.value) for kv in store.range(keys.revoke_prefix("h1"))} == {
        keys.revoke("h1", MAC, "n1"): Revocation("all", "n1"), keys.revoke("h1", MAC, "n2"): Revocation("all", "n2")}
    n, _ = nve_with_both()
    assert ended(n, requests(store)) == {"n1", "n2"}


def test_a_vn_without_that_mac_attached_is_not_asked(store):
    with pytest.raises(NotAttached):
        revoke(store, MAC, "x", {"n3"})
    assert list(store.range(keys.revoke_prefix("h1"))) == []


def test_a_request_of_the_older_form_still_ends_the_mac_in_every_vn(store):
    store.put(keys.revoke("h1", MAC), b'{"why": "legacy"}')  # revoke/<mac>, no VN in the record
    assert [(c.mac, c.why, c.vn) for c in requests(store)] == [(MAC, "legacy", "")]
    n, _ = nve_with_both()
    assert ended(n, requests(store)) == {"n1", "n2"}


def test_an_unreadable_record_keeps_the_vn_of_its_key(store):
    store.put(keys.revoke("h1", MAC, "n2"), b"not json")
    assert [(c.mac, c.why, c.vn) for c in requests(store)] == [(MAC, Revocation().why, "n2")]
