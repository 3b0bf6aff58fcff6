"""Host capacity and VM size (model/capacity.py): both forms, defaults, every problem by its
path, the canonical form round-trips, and a registered host keeps its declared capacity."""
from __future__ import annotations

import pytest
import yaml

from tenet.model.capacity import GiB, Capacity, Size, memory_bytes, memory_text
from tenet.model.errors import IntentError
from tenet.model.load import intent_to_doc, load_fabric, load_intent
from tenet.model.parts import split
from tenet.store.intent import registered
from tenet.store.records import Chassis

DOC = """
name: cap
underlay:
  networks:
    pn1: {subnet: 198.18.1.0/24}
switches:
  tor1: {network: pn1}
hosts:
  h1: {network: pn1, capacity: 8}
  h2: {network: pn1, capacity: {cpu: 16, memory: 64GiB}}
  h3: {network: pn1}
  p1: {switch: tor1, capacity: {slots: 2, memory: 1536MiB}}
networks:
  blue: {vnid: 10}
vms:
  a: {host: h1, network: blue, size: {cpu: 2, memory: 4GiB}}
  b: {host: h2, network: blue, size: {memory: 512MiB}}
  c: {host: h3, network: blue}
"""


def doc() -> dict:
    return yaml.safe_load(DOC)


def problems(d) -> list[str]:
    with pytest.raises(IntentError) as e:
        load_intent(d)
    return [str(p) for p in e.value.problems]


def test_both_forms_and_the_defaults():
    i = load_intent(doc())
    f = i.fabric
    assert f.host("h1").capacity == Capacity(slots=8)
    assert f.host("h2").capacity == Capacity(cpu=16, memory=64 * GiB)
    assert f.host("h3").capacity is None  # declared nothing: never a placement target
    assert f.proxies[0].capacity == Capacity(slots=2, memory=1536 << 20)
    sizes = {vm.name: vm.size for vm in i.vms}
    assert sizes == {"a": Size(2, 4 * GiB), "b": Size(1, 512 << 20), "c": Size(1, GiB)}


def test_the_canonical_form_round_trips():
    i = load_intent(doc())
    d = intent_to_doc(i)
    assert d["hosts"]["h1"]["capacity"] == 8  # slots alone: a bare number
    assert d["hosts"]["h2"]["capacity"] == {"cpu": 16, "memory": "64GiB"}
    assert d["hosts"]["p1"]["capacity"] == {"slots": 2, "memory": "1536MiB"}
    assert "capacity" not in d["hosts"]["h3"]
    assert d["vms"]["b"]["size"] == {"cpu": 1, "memory": "512MiB"} and "size" not in d["vms"]["c"]
    assert load_intent(d) == i
    fabric, tenancy = split(d)  # capacity is the fabric's, size the tenancy's
    assert "capacity" in fabric["hosts"]["h1"] and "size" in tenancy["vms"]["a"]


@pytest.mark.parametrize("where, value, expected", [
    ("hosts.h1.capacity", -1, "hosts.h1.capacity: must be a whole number >= 0, not -1"),
    ("hosts.h1.capacity", True, "hosts.h1.capacity: must be VM slots"),
    ("hosts.h1.capacity", "8", "hosts.h1.capacity: must be VM slots"),
    ("hosts.h1.capacity", {}, "hosts.h1.capacity: name at least one of slots, cpu and memory"),
    ("hosts.h1.capacity", {"cpus": 4}, "hosts.h1.capacity.cpus: unknown key"),
    ("hosts.h1.capacity", {"cpu": 2.5}, "hosts.h1.capacity.cpu: must be a whole number >= 0, not 2.5"),
    ("hosts.h1.capacity", {"memory": "64GB!"}, "hosts.h1.capacity.memory: not an amount of memory"),
    ("hosts.h1.capacity", {"memory": "64Gb"}, "hosts.h1.capacity.memory: unknown unit 'Gb' in '64Gb'"),
    ("hosts.h1.capacity", {"memory": 64}, "hosts.h1.capacity.memory: 64 needs a unit, like 64GiB"),
    ("hosts.h1.capacity", {"memory": "-4GiB"}, "hosts.h1.capacity.memory: not an amount of memory like 4GiB"),
    ("hosts.p1.capacity", {"slots": -2}, "hosts.p1.capacity.slots: must be a whole number >= 0, not -2"),
    ("vms.a.size", {"cpu": 0}, "vms.a.size.cpu: must be a whole number >= 1, not 0"),
    ("vms.a.size", {"memory": "0MiB"}, "vms.a.size.memory: must be at least 1B, not '0MiB'"),
    ("vms.a.size", {"memory": "0.5B"}, "vms.a.size.memory: '0.5B' is not a whole number of bytes"),
    ("vms.a.size", {"slots": 1}, "vms.a.size.slots: unknown key"),
    ("vms.a.size", 2, "vms.a.size: must be a mapping of cpu and memory, not 2"),
])
def test_problems_name_their_path(where, value, expected):
    d = doc()
    node = d
    *parents, last = where.split(".")
    for k in parents:
        node = node[k]
    node[last] = value
    got = problems(d)
    assert any(p.startswith(expected) for p in got), got
    assert len(got) == 1, got  # the host or VM itself is kept: nothing cascades from it


def test_a_switch_has_no_capacity_and_over_capacity_is_no_error():
    d = doc()
    d["switches"]["tor1"]["capacity"] = 4
    assert any(p.startswith("switches.tor1.capacity: unknown key") for p in problems(d))
    d = doc()
    d["hosts"]["h1"]["capacity"] = 0  # a: on a host with no room; the planner reports it
    assert load_intent(d).fabric.host("h1").capacity == Capacity(slots=0)


def test_memory_units():
    assert memory_bytes("4GiB") == 4 * GiB and memory_bytes("1.5 GiB") == 1536 << 20
    assert memory_bytes("2GB") == 2 * 10**9 and memory_bytes("100B") == 100
    for n in (GiB, 1536 << 20, 2 * 10**9, 1, 3 << 40):
        assert memory_bytes(memory_text(n)) == n
    assert memory_text(1536 << 20) == "1536MiB"


def test_a_registered_host_keeps_the_capacity_its_operator_declared():
    fabric_doc = split(intent_to_doc(load_intent(doc())))[0]
    chassis = Chassis(host="h1", network="pn1", address="198.18.1.10/24", uplink="up0")
    composed, problems_ = registered(fabric_doc, (chassis,))
    assert not problems_
    assert load_fabric(composed).host("h1").capacity == Capacity(slots=8)
