"""The addressing mode tables of seed 002 FIGS. 3-7, computed from the demo datacenter."""
from pathlib import Path

import pytest

from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints
from tenet.compute.extmac import Allocator, allocate, index_of, mac_of
from tenet.compute.tables import Function, from_json, to_json, vn_from_json, vn_to_json
from tenet.model.load import load_file

EXAMPLE = Path(__file__).parents[2] / "examples" / "datacenter.yaml"


@pytest.fixture(scope="module")
def fig3():
    intent = load_file(EXAMPLE)
    eps = declared_endpoints(intent)
    macs = allocate([e.key for e in eps], {})
    return intent, eps, macs, compute_tables(intent, eps, macs)


def by_vm(table):
    return {e.vm: e for e in table.entries if e.vm}


def test_fig7a_host2_n5(fig3):
    intent, _, macs, tables = fig3
    n5 = tables["host2"].vn("N5")
    rows = by_vm(n5)
    assert n5.entries[0].destination == "broadcast"
    assert n5.entries[0].function is Function.MULTICAST
    assert n5.entries[0].address == "239.0.19.141"  # 5005 in the low 24 bits of 239/8
    assert rows["C"].function is rows["D"].function is Function.NO_MODIFICATION
    assert rows["C"].address == "02:00:00:00:0c:0c"
    assert rows["F"].function is rows["G"].function is Function.TRANSLATE_L2
    assert rows["F"].address == macs[("N5", "F", 0)]
    assert set(rows) == {"C", "D", "F", "G"}


def test_fig7b_host2_n2(fig3):
    intent, _, macs, tables = fig3
    rows = by_vm(tables["host2"].vn("N2"))
    assert rows["A"].function is rows["B"].function is Function.NO_MODIFICATION
    assert rows["E"].function is Function.TRANSLATE_L2
    assert rows["J"].function is Function.ENCAPSULATE
    assert rows["J"].address == str(intent.fabric.host("host1").ip)


def test_host_gets_only_its_vns(fig3):
    _, _, _, tables = fig3
    assert [t.vn for t in tables["host2"].vns] == ["N2", "N5"]
    assert [t.vn for t in tables["host3"].vns] == ["N1", "N3", "N6"]
    assert [t.vn for t in tables["host4"].vns] == ["N2", "N5"]


def test_replication_lists_exactly_the_other_hosts(fig3):
    intent, _, _, tables = fig3
    n4 = tables["host1"].vn("N4")
    assert n4.entries[0].function is Function.REPLICATE
    assert n4.entries[0].peers == (str(intent.fabric.host("host5").ip),)
    n6 = tables["host3"].vn("N6")  # alone on its host: the group is still named, nobody else
    assert n6.entries[0].function is Function.MULTICAST


def test_reverse_table(fig3):
    _, _, macs, tables = fig3
    rev = {r.arrival: r for r in tables["host2"].vn("N5").reverse}
    assert rev["vni 5005"].internal == ""
    assert rev[macs[("N5", "C", 0)]].internal == "02:00:00:00:0c:0c" and rev[macs[("N5", "C", 0)]].local
    assert not rev[macs[("N5", "F", 0)]].local
    # host1 is alone on PN2 for N2: no external MACs needed, J is reached by VXLAN only
    assert [r.arrival for r in tables["host1"].vn("N2").reverse] == ["vni 5002"]


def test_reused_mac_and_ip_are_separate_destinations(fig3):
    _, _, macs, tables = fig3
    assert macs[("N5", "C", 0)] != macs[("N3", "N", 0)]
    assert by_vm(tables["host3"].vn("N3"))["N"].destination == by_vm(tables["host2"].vn("N5"))["C"].destination


def test_external_macs_unique_and_stable(fig3):
    _, eps, macs, _ = fig3
    assert len(set(macs.values())) == len(macs) == len(eps)
    again = allocate([e.key for e in eps], macs)
    assert again == macs
    grown = allocate([e.key for e in eps] + [("N1", "Z", 0)], macs)
    assert {k: grown[k] for k in macs} == macs and grown[("N1", "Z", 0)] not in macs.values()
    assert all(int(m.split(":")[0], 16) & 0x02 and not int(m.split(":")[0], 16) & 0x01 for m in macs.values())
    assert index_of(mac_of(77)) == 77


def test_json_round_trip(fig3):
    _, _, _, tables = fig3
    for t in tables.values():
        assert from_json(to_json(t)) == t
        assert all(vn_from_json(vn_to_json(v)) == v for v in t.vns)


def test_deterministic(fig3):
    intent, eps, macs, tables = fig3
    assert compute_tables(intent, tuple(reversed(eps)), macs) == tables


def test_an_allocation_whose_write_failed_is_allocated_again():
    """The leader writes new external MACs with the tables; if that write fails they are
    released, so the next pass allocates (and writes) them again instead of naming MACs no
    store holds."""
    a = Allocator({("N1", "A", 0): mac_of(1)})
    fresh = a.allocate([("N1", "A", 0), ("N1", "B", 0)])
    assert list(fresh) == [("N1", "B", 0)]
    a.release(fresh)
    assert ("N1", "B", 0) not in a.macs and list(a.allocate([("N1", "B", 0)])) == [("N1", "B", 0)]
