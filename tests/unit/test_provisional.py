"""The provisional overlay: what an NVE admitted itself forwards exactly as the controller's
tables will, adds nothing over them, and leaves when they settle it."""
from dataclasses import replace
from ipaddress import ip_network
from pathlib import Path

import pytest

from tenet.agent.desired import desired_state
from tenet.agent.fast_lane import hint_targets
from tenet.agent.notice import Admitted, Reported, Withdrawn, decode_notice, encode_notice
from tenet.agent.kernel.fake import FakeKernel
from tenet.agent.provisional import HINT_TTL, PROVISIONAL_TTL, Overlay, PeerHint, external_macs, merge
from tenet.agent.reconcile import reconcile
from tenet.aaa.provisioning import Provisioning
from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints, report_endpoint
from tenet.compute.extmac import allocate
from tenet.compute.tables import Function
from tenet.model.load import load_file
from tenet.store.records import EndpointReport

EXAMPLE = Path(__file__).parents[2] / "examples" / "datacenter.yaml"
NEW = "02:aa:00:00:00:01"  # a TES host1 admits into N1, which host1 translates with host3 and host5


@pytest.fixture(scope="module")
def world():
    """The tables without the TES (what the NVE has when it admits it), and with it (what the
    controller publishes next), its external MAC allocated after everyone else's."""
    intent = load_file(EXAMPLE)
    eps = declared_endpoints(intent)
    macs = allocate([e.key for e in eps], {})
    report = EndpointReport(vn="N1", vnid=5001, mac=NEW, port="tpnew0", host="host1", session=7,
                            provisioning=Provisioning(rate_down_bps=10_000_000, cos=3))
    tes = report_endpoint(report)
    with_macs = allocate([e.key for e in (*eps, tes)], macs)
    return (intent, report, tes, with_macs[tes.key], compute_tables(intent, eps, macs),
            compute_tables(intent, (*eps, tes), with_macs))


def state(tables, ports):
    return desired_state(tables, frozenset(ports), 1550)


def local_ports(tables):
    return {e.port for t in tables.vns for e in t.entries if e.port}


def test_an_admitted_tes_forwards_exactly_as_the_published_tables_will(world):
    _, _, tes, ext, before, after = world
    o = Overlay()
    o.learn(after["host1"])  # it was here before: its external MAC is known
    o.admit(tes, now=0.0)
    merged, added = merge(before["host1"], o.local.values(), o.hints.values())
    ports = local_ports(after["host1"])
    assert added == 1
    assert state(merged, ports) == state(after["host1"], ports)
    assert ext in state(merged, ports).nft_text  # translated toward host3 and host5 under its external MAC


def test_a_peers_hint_makes_it_accept_the_new_external_mac_as_its_tables_will(world):
    _, _, tes, ext, before, after = world
    o = Overlay()
    o.hint(PeerHint(5001, tes.mac, ext, "198.18.1.10", expires=HINT_TTL))
    for peer in ("host3", "host5"):
        merged, added = merge(before[peer], (), o.hints.values())
        ports = local_ports(after[peer])
        assert added == 1
        assert state(merged, ports).nft_text == state(after[peer], ports).nft_text


def test_nothing_early_without_the_external_mac_of_a_translated_vn(world):
    _, _, tes, _, before, _ = world
    o = Overlay()
    o.admit(tes, now=0.0)  # never seen: the controller allocates its external MAC
    assert merge(before["host1"], o.local.values(), ()) == (before["host1"], 0)


def test_nothing_early_into_a_vn_the_host_does_not_have(world):
    _, _, tes, ext, before, _ = world
    o = Overlay()
    o.extmacs[tes.vn, tes.mac] = ext
    o.admit(replace(tes, vn="N6"), now=0.0)  # host1 has no table for N6: its bridge and BUM rows wait
    assert merge(before["host1"], o.local.values(), ()) == (before["host1"], 0)


def test_a_tes_claiming_a_mac_or_external_mac_the_tables_name_gets_nothing(world):
    _, _, tes, ext, before, after = world
    declared = next(e for e in before["host1"].vn("N1").entries if e.function is Function.TRANSLATE_L2)
    o = Overlay()
    o.extmacs[tes.vn, declared.destination] = "06:74:6e:00:ff:ff"
    o.admit(replace(tes, mac=declared.destination), now=0.0)
    assert merge(before["host1"], o.local.values(), ()) == (before["host1"], 0)
    taken = before["host1"].vn("N1").reverse[1].arrival  # H's external MAC
    o = Overlay()
    o.extmacs[tes.vn, tes.mac] = taken
    o.admit(tes, now=0.0)
    assert merge(before["host1"], o.local.values(), ()) == (before["host1"], 0)
    h = PeerHint(5001, declared.destination, ext, "198.18.1.30", expires=HINT_TTL)  # a hint never overrides
    assert merge(before["host1"], (), [h]) == (before["host1"], 0)


def test_the_tables_settle_the_overlay(world):
    _, _, tes, ext, before, after = world
    o = Overlay()
    o.learn(after["host1"])
    o.admit(tes, now=0.0)
    o.hint(PeerHint(5001, "02:bb:00:00:00:02", "06:74:6e:00:0f:00", "198.18.1.30", expires=HINT_TTL))
    assert o.settle(before["host1"], now=1.0) == [] and len(o) == 2  # not yet published
    assert o.settle(after["host1"], now=1.0) == [] and not o.local  # confirmed
    assert o.settle(after["host1"], now=HINT_TTL) == [] and not o.hints  # expired
    late = o.admit(tes, now=10.0)
    assert o.settle(before["host1"], now=10.0 + PROVISIONAL_TTL + 0.1) == [late] and not o.local


def test_a_confirmed_row_with_another_external_mac_converges_to_the_published_one(world):
    _, _, tes, ext, before, after = world
    o = Overlay()
    o.extmacs[tes.vn, tes.mac] = "06:74:6e:00:0f:0f"  # remembered wrong: the tables win
    o.admit(tes, now=0.0)
    k = FakeKernel(frozenset(local_ports(after["host1"])))
    early = state(merge(before["host1"], o.local.values(), ())[0], k.ports())
    reconcile(k, early)
    assert "06:74:6e:00:0f:0f" in early.nft_text and k.observe().nft_hash == early.nft_hash
    o.settle(after["host1"], now=0.1)
    assert not o.local
    published = state(merge(after["host1"], o.local.values(), ())[0], k.ports())
    assert reconcile(k, published)
    assert ext in published.nft_text and k.observe().nft_hash == published.nft_hash


def test_a_withdrawn_row_leaves_the_kernel_and_the_port_is_gated_again(world):
    _, _, tes, ext, before, after = world
    o = Overlay()
    o.learn(after["host1"])
    o.admit(tes, now=0.0)
    k = FakeKernel(frozenset(local_ports(after["host1"])))
    early = state(merge(before["host1"], o.local.values(), ())[0], k.ports())
    reconcile(k, early)
    assert ("tpnew0", "tnb5001") in k.observe().attachments and k.observe().nft_hash == early.nft_hash
    o.withdraw("N1", NEW)  # e.g. the controller published without it
    without = state(merge(before["host1"], o.local.values(), ())[0], k.ports())
    assert without == state(before["host1"], k.ports())
    assert reconcile(k, without)
    assert ("tpnew0", "tnb5001") not in k.observe().attachments and k.observe().nft_hash == without.nft_hash
    gate = without.nft_text[without.nft_text.index("chain gate"):]
    assert '"tpnew0"' in gate[:gate.index("}")]  # the admission gate holds its port again


def test_only_the_peer_that_gave_a_hint_takes_it_back():
    o = Overlay()
    o.hint(PeerHint(5001, "02:bb:00:00:00:02", "06:74:6e:00:0f:00", "198.18.1.30", expires=1.0))
    assert not o.unhint(5001, "02:bb:00:00:00:02", "198.18.1.31")
    assert o.unhint(5001, "02:bb:00:00:00:02", "198.18.1.30") and not o.hints


def test_notices_round_trip_and_refuse_garbage(world):
    _, report, _, _, _, _ = world
    assert decode_notice(encode_notice(Admitted(report))) == Admitted(report)
    assert decode_notice(encode_notice(Withdrawn("N1", NEW))) == Withdrawn("N1", NEW)
    done = Reported(42, (("N1", NEW), ("N4", "02:aa:00:00:00:02")))
    assert decode_notice(encode_notice(done)) == done
    for bad in (b"", b"X{}", b"W{", b"W{}", b"A{\"vn\": 1}", b"R{}", b"R{\"revision\": \"x\", \"admitted\": []}"):
        with pytest.raises(ValueError):
            decode_notice(bad)


def test_hints_go_to_the_group_or_to_the_replication_peers_on_our_network(world):
    _, _, _, _, before, _ = world
    assert hint_targets(before["host1"].vn("N1"), ip_network("198.18.0.0/15")) == ("239.0.19.137",)
    n4 = before["host1"].vn("N4")  # replicated to host5
    peers = next(iter(n4.rows(Function.REPLICATE))).peers
    assert hint_targets(n4, ip_network(f"{peers[0]}/32")) == (peers[0],)
    assert hint_targets(n4, ip_network("192.0.2.0/24")) == ()


def test_a_hint_makes_a_vn_translated_here_as_the_controller_will(world):
    """N3 lives on host3 alone, so host3 translates nothing in it. A TES admitted into N3 on
    host1 (same physical network) makes the controller publish host3's members under their
    external MACs; host1's hint does the same at once, with the external MACs host3 remembers."""
    intent, _, tes, _, before, _ = world
    joining = replace(tes, vn="N3")
    eps = declared_endpoints(intent)
    macs = allocate([e.key for e in eps], {})
    later = allocate([e.key for e in (*eps, joining)], macs)
    after = compute_tables(intent, (*eps, joining), later)
    assert not any(r.local for r in before["host3"].vn("N3").reverse)
    o = Overlay()
    o.hint(PeerHint(5003, joining.mac, later[joining.key], "198.18.1.10", expires=HINT_TTL))
    remembered = external_macs(after["host3"])  # N and O were translated here before
    merged, added = merge(before["host3"], (), o.hints.values(), remembered)
    ports = local_ports(after["host3"])
    assert added == 3  # N's and O's external MACs, and the newcomer's
    # ... all but who may send N3's VXLAN: an unauthenticated hint never widens the underlay
    # guard (agent/underlay_guard.py); the controller's tables do, and host1 has no N3 device before them
    assert merged.vn("N3").underlay_peers == before["host3"].vn("N3").underlay_peers
    assert len(after["host3"].vn("N3").underlay_peers) == len(before["host3"].vn("N3").underlay_peers) + 1
    was = {t.vn: t.underlay_peers for t in before["host3"].vns}
    expected = replace(after["host3"], vns=tuple(replace(t, underlay_peers=was[t.vn]) for t in after["host3"].vns))
    assert state(merged, ports).nft_text == state(expected, ports).nft_text
    assert merge(before["host3"], (), o.hints.values(), {}) == (before["host3"], 0)  # none remembered: the tables decide
