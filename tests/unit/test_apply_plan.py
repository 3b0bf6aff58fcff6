"""`tenet apply`'s library (store/apply.py, model/diff.py) against a real SQLite store."""
from __future__ import annotations

import copy

import pytest

from tenet.model.diff import Change, ChangeKind, FieldChange, diff_documents
from tenet.model.errors import IntentError
from tenet.model.load import load_intent
from tenet.store import keys
from tenet.store.apply import ApplyConflict, apply, plan_apply
from tenet.store.intent import edit_intent, read_intent, whole_doc, write_intent
from tenet.store.open import open_store
from tenet.store.records import Chassis

DOC = {
    "name": "tapply",
    "underlay": {"networks": {"pn1": {"subnet": "198.19.31.0/24"}, "pn2": {"subnet": "198.19.32.0/24"}},
                 "routers": {"r": {"networks": ["pn1", "pn2"]}}},
    "hosts": {"h1": {"network": "pn1"}, "h2": {"network": "pn1"}, "h3": {"network": "pn2"}},
    "networks": {"n1": {"vnid": 7001, "subnet": "10.71.0.0/24"}, "n2": {"vnid": 7002, "subnet": "10.72.0.0/24"}},
    "aaa": {"users": {"alice": {"password": "wonderland", "network": "n1", "rate": "50mbit"}}},
    "vms": {"a": {"host": "h1", "network": "n1", "ip": "10.71.0.1/24"},
            "b": {"host": "h3", "network": "n1", "ip": "10.71.0.2/24"},
            "m": {"host": "h2", "network": "n1", "ip": "10.71.0.3/24"}},
}
TENANCY = ("tenants", "networks", "vms", "aaa", "servers", "vrouters", "vlinks")


@pytest.fixture
def store(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    write_intent(s, load_intent(DOC))
    yield s
    s.close()


def edited(**changes) -> dict:
    doc = copy.deepcopy(DOC)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = doc
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(last)
        else:
            node[last] = value
    return doc


def test_the_four_everyday_changes_are_named_item_by_item_field_by_field(store):
    doc = edited(networks__n3={"vnid": 7003, "subnet": "10.73.0.0/24"},
                 vms__c={"host": "h1", "network": "n3", "ip": "10.73.0.1/24"}, vms__b=None,
                 vms__m={"host": "h2", "network": "n2", "ip": "10.72.0.3/24"},
                 aaa__users__alice={"password": "wonderland", "network": "n1", "rate": "20mbit"})
    plan = plan_apply(store, doc, "f.yaml")
    got = {(c.item, c.kind): c.fields for c in plan.changes}
    assert set(got) == {("networks.n3", ChangeKind.ADDED), ("vms.c", ChangeKind.ADDED), ("vms.b", ChangeKind.REMOVED),
                        ("vms.m", ChangeKind.CHANGED), ("aaa.users.alice", ChangeKind.CHANGED)}
    assert got[("vms.m", ChangeKind.CHANGED)] == (FieldChange("nics[0].network", "n1", "n2"),
                                                   FieldChange("nics[0].ip", "10.71.0.3/24", "10.72.0.3/24"))
    assert got[("aaa.users.alice", ChangeKind.CHANGED)] == (FieldChange("rate", "50mbit", "20mbit"),)
    assert FieldChange("host", "h3", None) in got[("vms.b", ChangeKind.REMOVED)]
    assert FieldChange("nics[0].network", None, "n3") in got[("vms.c", ChangeKind.ADDED)]
    assert [c.item for c in plan.changes] == ["networks.n3", "vms.b", "vms.m", "vms.c", "aaa.users.alice"]
    assert plan.after.vn("n3").vnid == 7003 and plan.before == read_intent(store)


def test_apply_writes_the_tenancy_only_with_the_revision_it_was_computed_from(store):
    fabric = store.get(keys.fabric())
    plan = plan_apply(store, edited(vms__b=None))
    assert plan.revision == store.get(keys.tenancy()).mod_revision and not plan.installs_fabric
    rev = apply(store, plan)
    assert store.get(keys.tenancy()).mod_revision == rev and store.get(keys.fabric()) == fabric
    assert [vm.name for vm in read_intent(store).vms] == ["a", "m"]


def test_a_tenancy_only_document_is_enough(store):
    doc = {k: v for k, v in edited(vms__b=None).items() if k in TENANCY}
    assert [c.item for c in plan_apply(store, doc).changes] == ["vms.b"]


def test_an_unchanged_document_writes_nothing(store):
    rev = store.revision()
    for doc in (DOC, whole_doc(read_intent(store))):
        plan = plan_apply(store, doc)
        assert plan.empty and apply(store, plan) is None
    assert store.revision() == rev


def test_a_concurrent_change_between_plan_and_apply_fails_clearly_and_writes_nothing(store):
    plan = plan_apply(store, edited(vms__b=None))
    read = plan.revision
    edit_intent(store, lambda d: d["vms"].pop("m"))
    now = store.get(keys.tenancy())
    with pytest.raises(ApplyConflict, match=rf"the tenancy changed since it was read \(revision {read}, now "
                                            rf"{now.mod_revision}\): run tenet apply again to see the new diff"):
        apply(store, plan)
    assert store.get(keys.tenancy()) == now


def test_an_invalid_document_names_every_problem_and_changes_nothing(store):
    rev = store.revision()
    doc = edited(vms__c={"host": "h9", "network": "n1", "ip": "10.71.0.1/24", "colour": "red"}, bogus=1)
    with pytest.raises(IntentError) as e:
        plan_apply(store, doc, "f.yaml")
    paths = {p.path for p in e.value.problems}
    assert {"vms.c.host", "vms.c.colour", "vms.c.ip", "bogus"} <= paths, paths
    assert store.revision() == rev


def test_a_fabric_change_is_refused_naming_its_first_difference(store):
    doc = edited(hosts__h2={"network": "pn2"})
    with pytest.raises(IntentError, match=r"hosts\.h2\.network: is 'pn2' here but 'pn1' in the stored fabric: "
                                          r"apply changes the tenancy only"):
        plan_apply(store, doc)


def test_the_fabric_as_tenet_get_prints_it_with_registered_hosts_is_accepted(store):
    store.put(keys.chassis("h4"), Chassis(host="h4", network="pn2", address="198.19.32.44/24", uplink="up0").to_json())
    printed = whole_doc(read_intent(store))
    assert "h4" in printed["hosts"]
    plan = plan_apply(store, printed | {"vms": printed["vms"] | {"d": {"host": "h4", "network": "n1"}}})
    assert [c.item for c in plan.changes] == ["vms.d"]


def test_a_first_install_takes_a_whole_document_and_writes_both_parts_at_once(tmp_path):
    s = open_store(f"sqlite:///{tmp_path / 'new.db'}")
    with pytest.raises(IntentError, match="the store holds no fabric yet: a first apply gives a whole document"):
        plan_apply(s, {"networks": DOC["networks"]})
    plan = plan_apply(s, DOC)
    assert plan.installs_fabric and plan.before is None
    rev = apply(s, plan)
    assert s.get(keys.fabric()).mod_revision == s.get(keys.tenancy()).mod_revision == rev
    assert read_intent(s) == load_intent(DOC)
    s.close()


def test_a_diff_of_documents_lists_added_removed_and_changed_leaves():
    old = {"tenants": ["red"], "vms": {"x": {"host": "a", "nics": [{"network": "v1"}]}}}
    new = {"tenants": ["red", "blue"], "vms": {"x": {"host": "a", "nics": [{"network": "v1"}, {"network": "v2"}]}}}
    assert diff_documents(old, new) == (
        Change("tenants", "blue", ChangeKind.ADDED, ()),
        Change("vms", "x", ChangeKind.CHANGED, (FieldChange("nics[1].network", None, "v2"),)),
    )
