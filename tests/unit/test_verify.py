"""`tenet verify` (compute/verify.py): clean tables give no finding; tables with planted
faults name each one's host, VN and entry. And both commands against a real store."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from tenet.cli.main import app
from tenet.compute.tables import Function, ReverseEntry
from tenet.compute.trace import Snapshot
from tenet.compute.verify import FindingKind, verify
from tenet.model.tenancy import port_name
from tenet.store.intent import write_intent
from tenet.store.open import open_store
from tenet.store.published import Publisher

from test_trace import DOC, snapshot


@pytest.fixture(scope="module")
def snap() -> Snapshot:
    return snapshot()


def planted(snap: Snapshot, host: str, vn: str, change) -> Snapshot:
    """The snapshot with one VN table of one host changed."""
    ht = snap.tables[host]
    t = change(ht.vn(vn))
    return replace(snap, tables={**snap.tables, host: replace(ht, vns=tuple(t if x.vn == vn else x for x in ht.vns))})


def entries(f):
    return lambda t: replace(t, entries=tuple(f(t.entries)))


def mac(snap, vm):
    return next(n.mac for v in snap.intent.vms if v.name == vm for n in v.nics)


def ext(snap, vn, vm):
    """vm's external MAC, as a translating peer's table has it."""
    return next(e.address for ht in snap.tables.values() for t in ht.vns if t.vn == vn
                for e in t.rows(Function.TRANSLATE_L2) if e.vm == vm)


def test_clean_tables_have_no_finding(snap):
    assert verify(snap) == ()


def test_examples_are_clean():
    from pathlib import Path

    import yaml
    root = Path(__file__).parents[2]
    for f in [*root.glob("examples/*.yaml"), root / "tests/lab/small.yaml", root / "tests/lab/routed.yaml"]:
        assert verify(snapshot(yaml.safe_load(f.read_text()))) == (), f


def test_a_live_migration_is_clean():
    from test_migration_tables import tables
    for to in ("h3", "h4"):
        assert verify(Snapshot(*tables(to))) == ()


def test_a_translation_row_into_another_vn(snap):
    y, w3 = mac(snap, "y"), ext(snap, "v2", "w3")
    bad = planted(snap, "a", "v1", entries(lambda es: [replace(e, address=w3) if e.destination == y else e for e in es]))
    found = verify(bad)
    cross = [f for f in found if f.kind is FindingKind.CROSS_VN]
    assert [(f.host, f.vn) for f in cross] == [("a", "v1")]
    assert y in cross[0].entry and w3 in cross[0].entry and "VN v2" in cross[0].detail
    assert any(f.kind is FindingKind.UNREACHABLE and f.entry == "x1 → y" for f in found)


def test_a_local_row_on_another_vns_port(snap):
    w1 = port_name("w1", 0)
    bad = planted(snap, "a", "v1", entries(lambda es: [replace(e, port=w1) if e.vm == "x2" else e for e in es]))
    found = [f for f in verify(bad) if f.kind is FindingKind.CROSS_VN]
    assert any(f.host == "a" and f.vn == "v1" and w1 in f.entry and "NIC of VN v2" in f.detail for f in found)
    assert any(f.host == "a" and f.vn == "v2" and f"port {w1} is in VN v1 too" in f.detail for f in found)  # w1's own row


def test_a_vni_of_another_vn(snap):
    bad = planted(snap, "c", "v1", lambda t: replace(t, vnid=5102))
    found = verify(bad)
    assert any(f.kind is FindingKind.CROSS_VN and f.host == "c" and f.vn == "v1" and f.entry == "VNI 5102" for f in found)
    assert any(f.kind is FindingKind.CROSS_VN and "delivered into VN v1" in f.detail for f in found)  # v2's frames


def test_a_reverse_entry_without_a_forward_one(snap):
    stray = ReverseEntry("06:74:6e:00:0f:ff", "02:00:00:00:0f:ff", False)
    bad = planted(snap, "b", "v1", lambda t: replace(t, reverse=t.reverse + (stray,)))
    (f,) = verify(bad)
    assert (f.kind, f.host, f.vn) == (FindingKind.ORPHAN_REVERSE, "b", "v1")
    assert f.entry == "reverse 06:74:6e:00:0f:ff → 02:00:00:00:0f:ff (from peer)"


def test_a_reverse_entry_taking_another_vns_external_mac(snap):
    w3 = ext(snap, "v2", "w3")
    bad = planted(snap, "a", "v1", lambda t: replace(t, reverse=t.reverse + (ReverseEntry(w3, mac(snap, "y"), False),)))
    found = verify(bad)
    assert any(f.kind is FindingKind.CROSS_VN and f.host == "a" and w3 in f.entry for f in found)


def test_a_missing_row_is_named_though_flooding_still_delivers(snap):
    """Without its row, a frame to z is unknown unicast: the bridge floods it, and z's host
    delivers it. The kernel does reach z, so the finding is the missing row, not isolation."""
    z = mac(snap, "z")
    bad = planted(snap, "a", "v1", entries(lambda es: [e for e in es if e.destination != z]))
    found = verify(bad)
    assert {(f.kind, f.host, f.vn, f.entry) for f in found} == {
        (FindingKind.FLOODED, "a", "v1", "x1 → z"), (FindingKind.FLOODED, "a", "v1", "x2 → z")}
    assert "has no row for " + z in found[0].detail


def test_a_row_to_the_wrong_host_leaves_an_endpoint_unreachable(snap):
    z, b = mac(snap, "z"), snap.tables["b"].underlay_ip
    bad = planted(snap, "a", "v1", entries(lambda es: [replace(e, address=b) if e.destination == z else e for e in es]))
    found = verify(bad)
    assert {(f.kind, f.host, f.vn, f.entry) for f in found} == {
        (FindingKind.UNREACHABLE, "a", "v1", "x1 → z"), (FindingKind.UNREACHABLE, "a", "v1", "x2 → z")}
    assert f"{z} is not a local TES of VN v1 on b" in found[0].detail


def test_a_missing_route_leaves_a_routed_endpoint_unreachable(snap):
    bad = planted(snap, "a", "r1", lambda t: replace(t, routes=tuple(r for r in t.routes if r.address != snap.tables["c"].underlay_ip)))
    found = verify(bad)
    assert found and {(f.kind, f.host, f.vn) for f in found} == {(FindingKind.UNREACHABLE, "a", "r1")}
    assert {f.entry for f in found} == {"ra → rd", "rb → rd"}


def test_a_declared_endpoint_no_table_has(snap):
    z = mac(snap, "z")
    bad = planted(snap, "c", "v1", entries(lambda es: [e for e in es if not (e.destination == z and e.function is Function.NO_MODIFICATION)]))
    found = verify(bad)
    assert any(f.kind is FindingKind.UNREACHABLE and f.host == "c" and f.entry.startswith("z NIC 0") for f in found)


def test_the_commands_read_a_store(tmp_path, snap):
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url)
    write_intent(store, snap.intent)
    ops, pending = Publisher().ops(snap.tables, snap.tables)
    store.txn([], ops)
    store.close()
    runner = CliRunner(mix_stderr=False)
    r = runner.invoke(app, ["trace", "--store", url, "--from", "x1", "--to", "10.50.0.4", "--json"])
    assert r.exit_code == 0, r.output
    steps = json.loads(r.output)["steps"]
    assert steps[-1]["step"] == "deliver" and steps[-1]["vm"] == "z"
    r = runner.invoke(app, ["trace", "--store", url, "--from", "w1", "--to", "ff:ff:ff:ff:ff:ff"])
    assert r.exit_code == 0 and "delivered to 2 port(s)" in r.output and "VXLAN VNI 5102" in r.output
    r = runner.invoke(app, ["trace", "--store", url, "--from", "nobody", "--to", "10.50.0.4"])
    assert r.exit_code == 1 and "no VM, server or attached TES named 'nobody'" in r.stderr
    r = runner.invoke(app, ["verify", "--store", url])
    assert r.exit_code == 0 and "no findings" in r.output, r.output
    store = open_store(url)  # a fault: b's table of v1 loses its row for z
    bad = planted(snap, "b", "v1", entries(lambda es: [e for e in es if e.destination != mac(snap, "z")]))
    ops, _ = Publisher().ops(bad.tables, ["b"])
    store.txn([], ops)
    store.close()
    r = runner.invoke(app, ["verify", "--store", url, "--json"])
    assert r.exit_code == 1 and "1 finding(s)" in r.stderr
    assert {(f["kind"], f["host"], f["entry"]) for f in json.loads(r.stdout)["findings"]} == {("reached by no row", "b", "y → z")}
    assert DOC["name"] == snap.intent.name
