"""The lab's `control:` block: defaults, etcd clusters, and each bad field named."""
import pytest

from tenet.lab.control import Control, StoreKind, control_of
from tenet.model.errors import IntentError


def test_absent_is_one_machine():
    assert control_of({"name": "x"}) == Control(StoreKind.SQLITE, 0, 1)


def test_etcd_defaults_to_three_members():
    assert control_of({"control": {"store": "etcd", "controllers": 2}}) == Control(StoreKind.ETCD, 3, 2)


def test_the_fast_lane_is_on_unless_turned_off():
    assert control_of({"name": "x"}).fast_lane
    off = control_of({"control": {"fast_lane": False}})
    assert not off.fast_lane and Control.from_dict(off.to_dict()) == off


@pytest.mark.parametrize("block, path", [
    ({"store": "zk"}, "control.store"),
    ({"store": "etcd", "etcd_members": 2}, "control.etcd_members"),
    ({"etcd_members": 3}, "control.etcd_members"),
    ({"controllers": 0}, "control.controllers"),
    ({"controllers": "2"}, "control.controllers"),
    ({"replicas": 2}, "control.replicas"),
    ({"fast_lane": "off"}, "control.fast_lane"),
])
def test_bad_fields_are_named(block, path):
    with pytest.raises(IntentError) as e:
        control_of({"control": block})
    assert [p.path for p in e.value.problems] == [path]
