"""What the lab does when the intent changes (hypervisor/follow.py, lab/users.py): computed from
two intents, before any namespace is touched."""
from __future__ import annotations

import copy

from tenet.hypervisor.follow import unfollowable, vm_changes
from tenet.lab.users import SessionChange, dynauth_argv, session_changes
from tenet.model.load import load_intent
from tenet.store.records import EndpointReport

DOC = {
    "name": "tfollow",
    "underlay": {"networks": {"pn1": {"subnet": "198.19.51.0/24"}}},
    "hosts": {"h1": {"network": "pn1"}, "h2": {"network": "pn1"}},
    "networks": {"n1": {"vnid": 7501, "subnet": "10.75.1.0/24"}, "n2": {"vnid": 7502, "subnet": "10.75.2.0/24"}},
    "aaa": {"users": {"alice": {"password": "w", "network": "n1", "rate_up": "50mbit"},
                      "bob": {"password": "b", "network": "n1", "rate": "10mbit"}}},
    "vms": {"a": {"host": "h1", "network": "n1", "ip": "10.75.1.2/24"},
            "m": {"host": "h1", "nics": [{"network": "n1", "ip": "10.75.1.4/24"}, {"network": "n2", "ip": "10.75.2.4/24"}]},
            "v": {"host": "h2", "network": "n1", "ip": "10.75.1.5/24"}},
}


def intent(**vms):
    doc = copy.deepcopy(DOC)
    for name, spec in vms.items():
        if spec is None:
            doc["vms"].pop(name)
        else:
            doc["vms"][name] = spec
    return load_intent(doc)


def test_vms_added_removed_migrated_and_nics_replugged():
    before = intent()
    after = intent(v=None, p={"host": "h2", "network": "n2", "ip": "10.75.2.9/24"},
                   m={"host": "h2", "nics": [{"network": "n1", "ip": "10.75.1.4/24"}, {"network": "n2", "ip": "10.75.2.5/24"}]},
                   a={"host": "h1", "network": "n2", "ip": "10.75.2.1/24"})
    c = vm_changes(before, after)
    assert (c.added, c.removed, c.migrated) == (("p",), ("v",), ("m",))
    assert c.replugged == (("a", 0), ("m", 1))  # m's eth0 is as it was: it moves with m
    assert c.restart == ("p", "a", "m")
    assert vm_changes(before, intent()).empty


def test_a_nic_whose_vn_changes_its_addressing_is_replugged():
    doc = copy.deepcopy(DOC)
    doc["networks"]["n1"]["forwarding"] = "ip"  # a routed VN: its NICs get a default route
    assert vm_changes(intent(), load_intent(doc)).replugged == (("a", 0), ("m", 0), ("v", 0))


def test_the_lab_refuses_what_it_cannot_follow():
    before = intent()
    doc = copy.deepcopy(DOC)
    doc.pop("aaa")
    assert "keep at least one user" in unfollowable(before, load_intent(doc), radius=True)
    assert unfollowable(load_intent(doc), before, radius=False).endswith("add users with lab down and up")
    doc = copy.deepcopy(DOC)
    doc["servers"] = {"s1": {"uplink": "pn1", "network": "n1", "identity": "alice", "password": "w"}}
    assert "servers are physical machines" in unfollowable(before, load_intent(doc), radius=True)
    assert unfollowable(before, intent(v=None), radius=True) is None


def report(mac, identity, host="h1"):
    return EndpointReport(vn="n1", vnid=7501, mac=mac, port="tp0", host=host, identity=identity)


def test_live_sessions_of_changed_users_get_a_coa_or_a_disconnect():
    before = load_intent(DOC).aaa
    doc = copy.deepcopy(DOC)
    users = doc["aaa"]["users"]
    reports = [report("02:00:00:00:00:01", "alice"), report("02:00:00:00:00:02", "bob", "h2"),
               report("02:00:00:00:00:03", "carol")]
    users["alice"]["rate_up"] = "20mbit"  # a rate: in place
    assert session_changes(before, load_intent(doc).aaa, reports) == (SessionChange("h1", "02:00:00:00:00:01", up_bps=20_000_000),)
    users["bob"] = {"password": "b", "network": "n1"}  # a limit lifted: a CoA cannot
    users["alice"]["network"] = "n2"  # another VN: a new session
    got = session_changes(before, load_intent(doc).aaa, reports)
    assert got == (SessionChange("h1", "02:00:00:00:00:01", disconnect=True), SessionChange("h2", "02:00:00:00:00:02", disconnect=True))
    users.pop("alice")
    assert session_changes(before, load_intent(doc).aaa, reports[:1]) == (SessionChange("h1", "02:00:00:00:00:01", disconnect=True),)


def test_the_operators_command_carries_only_the_rates_it_sets():
    argv = dynauth_argv(SessionChange("h1", "02:00:00:00:00:01", up_bps=20_000_000), "198.19.51.10", "/s")
    assert argv[-4:] == ["02:00:00:00:00:01", "coa", "--up", "20000000"]
    assert dynauth_argv(SessionChange("h1", "m", disconnect=True), "ip", "/s")[-1] == "disconnect"
