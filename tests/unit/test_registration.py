"""Hosts register themselves: chassis records join the fabric, a lapsed lease takes a host out
of its peers' tables after the grace, and the agent's registration thread keeps it alive."""
import time

import pytest

from tenet.agent.config import AgentConfig
from tenet.agent.registration import Registration, chassis_of
from tenet.controller.liveness import Liveness
from tenet.controller.publish import Publication, publish
from tenet.store.base import follow
from tenet.model.load import intent_to_doc, load_file
from tenet.model.parts import split
from tenet.store import keys, published
from tenet.store.intent import read_intent, registered, write_intent
from tenet.store.open import open_store
from tenet.store.records import Alive, Chassis, HostRole

from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "datacenter.yaml"


def fabric_doc():
    return split(intent_to_doc(load_file(EXAMPLE)))[0]


def chassis(host, address, network="pn1", **kw):
    return Chassis(host=host, network=network, address=address, uplink="eth1", **kw)


def test_a_registration_adds_or_updates_a_host_and_a_misfit_is_named_not_fatal():
    doc, problems = registered(fabric_doc(), (
        chassis("host9", "198.18.1.99/24"),  # a new host
        chassis("host2", "198.18.1.50/24", role=HostRole.ACCESS_SWITCH, authenticator=True),  # declared: its agent knows better
        chassis("host8", "198.18.7.1/24"),  # not in pn1
        chassis("host7", "198.18.1.99/24"),  # host9's address
        chassis("host6", "198.18.1.5/24", network="pn9"),
    ))
    assert doc["hosts"]["host9"] == {"network": "pn1", "ip": "198.18.1.99", "role": "hypervisor", "capability": 100,
                                     "admission_shards": 1, "uplink": "eth1"}
    assert "host2" not in doc["hosts"] and doc["switches"]["host2"]["ip"] == "198.18.1.50"
    assert [(p.path, p.message) for p in problems] == [
        ("chassis.host8", "198.18.7.1/24 is not a host address of pn1 (198.18.1.0/24)"),
        ("chassis.host7", "198.18.1.99 is taken by host host9"),
        ("chassis.host6", "no physical network named 'pn9' in the fabric"),
    ]


def seeded(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    write_intent(store, load_file(EXAMPLE))
    return store


def test_registered_hosts_are_computed_from_their_chassis(tmp_path):
    store = seeded(tmp_path)
    store.put(keys.chassis("host2"), chassis("host2", "198.18.1.77/24").to_json())
    assert read_intent(store).fabric.host("host2").ip.exploded == "198.18.1.77"
    tables = publish(store)
    assert tables["host2"].underlay_ip == "198.18.1.77" and tables["host2"].uplink == "eth1"
    store.close()


def all_up(store, intent) -> None:
    """Every host of the intent registered and alive."""
    for h in intent.fabric.hosts:
        store.put(keys.chassis(h.name), chassis(h.name, str(h.address), h.network).to_json())
        store.put(keys.alive(h.name), Alive(pid=1, since=0).to_json())


def test_a_host_down_past_the_grace_leaves_its_peers_tables_and_keeps_its_own(tmp_path):
    store = seeded(tmp_path)
    intent = read_intent(store)
    all_up(store, intent)
    live = Liveness(grace=0)
    before = publish(store, liveness=live)
    mac_on_host3 = {n.mac for vm in intent.vms if vm.host == "host3" for n in vm.nics}
    rows = lambda t: {e.destination for vn in t.vns for e in vn.entries}  # noqa: E731
    assert rows(before["host1"]) & mac_on_host3
    store.delete(keys.alive("host3"))  # its lease lapsed
    after = publish(store, liveness=live)
    assert not rows(after["host1"]) & mac_on_host3
    assert "host3" not in after and published.read(store, "host3") == before["host3"]
    store.put(keys.alive("host3"), Alive(pid=2, since=1).to_json())  # it came back
    again = publish(store, liveness=live)
    assert again["host3"].content_hash == before["host3"].content_hash and again["host3"].generation == before["host3"].generation
    assert rows(again["host1"]) == rows(before["host1"])
    store.close()


def test_the_agent_registers_renews_re_registers_and_revokes(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    store = open_store(url)
    config = AgentConfig(host="h1", store=url, uplink="eth1", network="pn1", lease_ttl=2)
    reg = Registration(config, lambda: "198.18.1.10/24")
    reg.start()
    try:
        assert reg.registered.wait(5)
        assert Chassis.from_json(store.get(keys.chassis("h1")).value) == chassis_of(config, "198.18.1.10/24")
        first = store.get(keys.alive("h1"))
        time.sleep(3)  # longer than the TTL: renewed meanwhile
        assert store.get(keys.alive("h1")) == first
        store.revoke(reg.lease)  # as if the store had let it lapse
        deadline = time.monotonic() + 5
        while store.get(keys.alive("h1")) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.get(keys.alive("h1")) is not None  # registered anew
    finally:
        reg.stop()
    assert store.get(keys.alive("h1")) is None  # a clean stop: shown down at once
    assert store.get(keys.chassis("h1")) is not None  # still known
    store.close()


def test_no_address_no_registration(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    reg = Registration(AgentConfig(host="h1", store=url, uplink="eth1", network="pn1", lease_ttl=2), lambda: None)
    reg.start()
    time.sleep(1)
    reg.stop()
    store = open_store(url)
    assert store.get(keys.chassis("h1")) is None and store.get(keys.alive("h1")) is None
    store.close()


def test_the_inventory_shows_each_host_as_it_is_and_forgets_only_a_stopped_one(tmp_path):
    import pytest
    from tenet.store.base import StoreError
    from tenet.store.inventory import HostState, forget, hosts

    store = seeded(tmp_path)
    store.put(keys.chassis("host1"), chassis("host1", "198.18.2.10/24", "pn2").to_json())
    store.put(keys.alive("host1"), Alive(pid=1, since=5.0).to_json())
    store.put(keys.chassis("host2"), chassis("host2", "198.18.1.10/24").to_json())  # registered, lease gone
    store.put(keys.chassis("host9"), chassis("host9", "198.18.9.1/24").to_json())  # does not fit pn1
    publish(store)
    views = {v.name: v for v in hosts(store)}
    assert (views["host1"].state, views["host1"].since, views["host1"].published) == (HostState.UP, 5.0, 1)
    assert views["host2"].state is HostState.DOWN
    assert views["host3"].state is HostState.UNREGISTERED and views["host3"].address
    assert views["host9"].state is HostState.REFUSED and "not a host address of pn1" in views["host9"].problem
    with pytest.raises(StoreError, match="host1 is up"):
        forget(store, "host1")
    forget(store, "host2")
    assert store.get(keys.chassis("host2")) is None
    with pytest.raises(StoreError, match="host2 is not registered"):
        forget(store, "host2")
    store.close()


def test_a_host_still_running_vms_is_not_forgotten(tmp_path):
    import pytest
    from tenet.store.base import StoreError
    from tenet.store.inventory import forget

    store = open_store(f"sqlite:///{tmp_path / 's.db'}")
    doc = intent_to_doc(load_file(EXAMPLE))
    c = chassis("host1", doc["hosts"]["host1"]["ip"] + "/24", "pn2")
    del doc["hosts"]["host1"]  # host1 exists only by registration
    fabric, tenancy = split(doc)
    import json
    store.put(keys.fabric(), json.dumps(fabric).encode())
    store.put(keys.chassis("host1"), c.to_json())
    store.put(keys.tenancy(), json.dumps(tenancy).encode())
    assert read_intent(store).fabric.host("host1").uplink == "eth1"
    with pytest.raises(StoreError, match="host1 still runs H, I, J, K"):
        forget(store, "host1")
    store.close()


TOPOLOGIES = sorted((Path(__file__).parents[2] / "tests" / "lab").glob("*.yaml")) + sorted(
    (Path(__file__).parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", TOPOLOGIES, ids=lambda p: p.name)
def test_every_lab_host_registering_from_its_config_gives_back_the_same_intent(path):
    """The lab writes each agent's file from the declared host (config_for); what that agent
    registers must compose into the very intent the lab started with — else the controller
    computes another datacenter than the one built."""
    from tenet.agent.config import config_for, parse_config, render
    from tenet.store.intent import compose, Stored
    from tenet.store.base import KeyValue
    import json
    import tomllib

    intent = load_file(path)
    regs = []
    for h in reversed(intent.fabric.hosts):  # hosts register in any order; the fabric's order allocates carriers
        config = parse_config(tomllib.loads(render(config_for(h, "sqlite:///x.db"))))
        regs.append(chassis_of(config, str(h.address)))
    doc = intent_to_doc(intent)
    fabric, tenancy = split(doc)
    kv = lambda k, d: KeyValue(k, json.dumps(d).encode(), 1, 1, 1)  # noqa: E731
    assert registered(fabric, tuple(regs))[1] == ()
    assert compose(Stored(kv(keys.fabric(), fabric), kv(keys.tenancy(), tenancy), tuple(regs))) == intent


def test_a_leader_drops_a_down_host_and_takes_it_back_pass_by_pass(tmp_path):
    """As above, with one leader's passes fed by its watch (controller/publish.Publication)."""
    store = seeded(tmp_path)
    intent = read_intent(store)
    all_up(store, intent)
    p = Publication(store, liveness=Liveness(grace=0))
    rev = p.revision + 1

    def step():
        nonlocal rev
        rev, events = follow(store, keys.ROOT, rev, timeout=1)
        assert p.feed(events)
        p.run(time.monotonic())
        return {h: published.read(store, h) for h in ("host1", "host3")}

    p.run(time.monotonic(), everything=True)
    before = {h: published.read(store, h) for h in ("host1", "host3")}
    rows = lambda t: {e.destination for vn in t.vns for e in vn.entries}  # noqa: E731
    on_host3 = {n.mac for vm in intent.vms if vm.host == "host3" for n in vm.nics}
    store.delete(keys.alive("host3"))
    after = step()
    assert not rows(after["host1"]) & on_host3 and after["host3"] == before["host3"]
    store.put(keys.alive("host3"), Alive(pid=2, since=1).to_json())
    again = step()
    assert rows(again["host1"]) == rows(before["host1"]) and again["host3"] == before["host3"]
    store.close()
