"""Reconciliation against the in-memory kernel: converges, is idempotent, owns only its own."""
from dataclasses import replace
from pathlib import Path

from tenet.agent.desired import desired_state
from tenet.agent.kernel.fake import FakeKernel
from tenet.agent.kernel.state import BridgeFdb, Link, MacClass, Shaper
from tenet.agent.reconcile import AddVxlanFdb, Attach, ClearShaper, DelLink, DelVxlanFdb, SetMacClass, SetShaper, reconcile
from tenet.agent.rates import stage_names
from tenet.agent.translation import render
from tenet.compute.addressing import compute_tables
from tenet.aaa.provisioning import Provisioning
from tenet.compute.endpoints import declared_endpoints, reported_endpoints
from tenet.store.records import EndpointKind, EndpointReport
from tenet.compute.extmac import allocate
from tenet.model.load import load_file
from tenet.model.tenancy import port_name, switch_port_name

EXAMPLE = Path(__file__).parents[2] / "examples" / "datacenter.yaml"


def tables_for(doc_intent, host):
    eps = declared_endpoints(doc_intent)
    return compute_tables(doc_intent, eps, allocate([e.key for e in eps], {}))[host]


def host2_kernel():
    intent = load_file(EXAMPLE)
    ports = frozenset(port_name(v, 0) for v in ("A", "B", "C", "D"))
    return intent, FakeKernel(ports)


def converge(kernel, tables):
    desired = desired_state(tables, kernel.ports(), kernel.uplink_mtu("up0"))
    ops = reconcile(kernel, desired)
    return desired, ops


def test_converges_and_second_pass_is_empty():
    intent, k = host2_kernel()
    t = tables_for(intent, "host2")
    desired, ops = converge(k, t)
    assert ops
    assert k.observe().links == desired.links
    assert k.observe().bridge_fdb == desired.bridge_fdb
    assert k.observe().attachments == desired.attachments
    assert k.observe().nft_hash == desired.nft_hash != ""
    _, again = converge(k, t)
    assert again == []


def test_host2_dataplane_shape():
    intent, k = host2_kernel()
    desired, _ = converge(k, tables_for(intent, "host2"))
    names = {l.name for l in desired.links}
    assert {"tnb5002", "tnx5002", "tnb5005", "tnx5005"} == names
    vx = next(l for l in desired.links if l.name == "tnx5005")
    assert vx.vxlan.group == "239.0.19.141" and vx.mtu == 1500
    j = next(e for e in desired.vxlan_fdb if e.dev == "tnx5002")
    assert j.dst == str(intent.fabric.host("host1").ip)
    assert BridgeFdb("tnx5002", j.mac) in desired.bridge_fdb


def test_removes_only_what_it_no_longer_wants():
    intent, k = host2_kernel()
    t = tables_for(intent, "host2")
    converge(k, t)
    without_n5 = replace(t, vns=tuple(v for v in t.vns if v.vn != "N5"))
    _, ops = converge(k, without_n5)
    gone = {op.name for op in ops if isinstance(op, DelLink)}
    assert {"tnb5005", "tnx5005"} <= gone and not any(n.endswith("5002") for n in gone)
    assert all(br != "tnb5005" for _, br in k.observe().attachments)


def test_missing_port_is_reported_not_invented():
    intent = load_file(EXAMPLE)
    k = FakeKernel(frozenset({port_name("A", 0)}))
    desired, _ = converge(k, tables_for(intent, "host2"))
    assert port_name("B", 0) in desired.missing_ports
    assert (port_name("A", 0), "tnb5002") in k.observe().attachments


def test_bum_mode_change_rebuilds_vxlan():
    intent, k = host2_kernel()
    t = tables_for(intent, "host2")
    converge(k, t)
    n5 = t.vn("N5")
    t2 = replace(t, vns=tuple(replace(v, group="239.9.9.9") if v is n5 else v for v in t.vns))
    _, ops = converge(k, t2)
    assert DelLink("tnx5005") in ops
    assert next(l for l in k.observe().links if l.name == "tnx5005").vxlan.group == "239.9.9.9"
    assert converge(k, t2)[1] == []


def test_ruleset_shape():
    intent = load_file(EXAMPLE)
    _, k = host2_kernel()
    text = render(tables_for(intent, "host2"), k.ports())
    c, e = port_name("C", 0), port_name("E", 0)
    assert 'hook ingress device "up0"' in text and f'02:00:00:00:0c:0c : "{c}"' in text
    assert f'devices = {{ "{port_name("A", 0)}", "{port_name("B", 0)}" }}' in text and 'fwd to "up0"' in text
    assert e not in text  # E is on host4
    bare = render(tables_for(intent, "host2"), frozenset())  # no ports yet: nothing to hook but the bridges
    guard = 5  # the underlay guard's (agent/underlay_guard.py): its hook, its VXLAN check, three drop counters
    assert bare.count("chain ") == 1 + guard and 'devices = { "tnb5002", "tnb5005" } priority -300; policy drop' in bare
    host1 = frozenset(port_name(v, 0) for v in ("H", "I", "J", "K"))
    text = render(tables_for(intent, "host1"), host1)
    # N1, N4: in + out; uplink; the bridges' way up; control frames; port security and a chain per NIC
    assert text.count("chain ") == 7 + guard + 1 + len(host1)
    control = text[text.index("chain control"):]
    assert all(f'"{p}"' in control.split("\n")[1] for p in host1)  # every port, before anything else
    assert "priority -300" in control and "ether type { 0x88b5, 0x88b6 } counter drop" in control


def test_rate_from_the_access_accept_becomes_a_shaper_and_goes_with_it():
    intent, k = host2_kernel()
    t = tables_for(intent, "host2")
    c = port_name("C", 0)
    limited = replace(t, vns=tuple(
        replace(v, entries=tuple(replace(e, rate_down_bps=50_000_000) if e.port == c else e for e in v.entries)) for v in t.vns))
    converge(k, limited)
    assert k.observe().shapers == {Shaper(c, 50_000_000)}
    _, ops = converge(k, limited)
    assert ops == []  # idempotent
    _, ops = converge(k, t)  # the limit is gone from the tables (TES re-authenticated, or left)
    assert ops == [ClearShaper(c)] and k.observe().shapers == frozenset()


class _Asking(FakeKernel):
    """Records which sections each observe() asked for."""

    def __init__(self, ports):
        super().__init__(ports)
        self.asked = []

    def observe(self, sections=None):
        self.asked.append(sections)
        return super().observe(sections)


def test_a_pass_after_a_converged_one_reads_back_only_what_changed():
    intent, k = host2_kernel()
    k = _Asking(k.ports())
    t = tables_for(intent, "host2")
    before, _ = converge(k, t)
    c = port_name("C", 0)
    limited = replace(t, vns=tuple(
        replace(v, entries=tuple(replace(e, rate_down_bps=50_000_000) if e.port == c else e for e in v.entries)) for v in t.vns))
    desired = desired_state(limited, k.ports(), k.uplink_mtu("up0"))
    ops = reconcile(k, desired, converged=before)
    assert k.asked[-1] == {"shapers"} and [type(o).__name__ for o in ops] == ["SetShaper"]
    assert reconcile(k, desired, converged=desired) == [] and len(k.asked) == 2  # nothing changed: no read at all
    # what the partial pass assumed is what a full read finds
    assert reconcile(k, desired) == [] and k.asked[-1] is None


# -- rates both ways: the upstream stage (rates.Stage) --------------------------------

def _with_rates(t, port, up, down=0):
    return replace(t, vns=tuple(replace(v, entries=tuple(
        replace(e, rate_up_bps=up, rate_down_bps=down) if e.port == port else e for e in v.entries)) for v in t.vns))


def test_a_tes_limited_upstream_gets_a_stage_in_its_place_and_a_coa_rerates_it_in_place():
    intent, k = host2_kernel()
    t = tables_for(intent, "host2")
    c = port_name("C", 0)
    shaper, arrival = stage_names(c)
    br = dict(desired_state(t, k.ports(), 1550).attachments)[c]
    desired, _ = converge(k, _with_rates(t, c, up=30_000_000, down=50_000_000))
    seen = k.observe()
    assert Link(arrival, "veth", master=br, peer=shaper, mtu=1550) in seen.links  # in the bridge instead of C's port
    assert Link(shaper, "veth", peer=arrival, mtu=1550) in seen.links
    assert c not in dict(seen.attachments) and BridgeFdb(arrival, intent_mac(intent, "C")) in seen.bridge_fdb
    assert seen.shapers == {Shaper(c, 50_000_000), Shaper(shaper, 30_000_000)}  # down on the port, up on the stage
    assert f'iifname "{c}" fwd to "{shaper}"' in desired.nft_text  # everything C sends goes through the stage
    assert f'iifname "{shaper}" fwd to "{c}"' in desired.nft_text  # and what the bridge sends C comes back out
    assert converge(k, _with_rates(t, c, up=30_000_000, down=50_000_000))[1] == []  # idempotent
    # RFC 5176 CoA: a new up rate is one op, the token bucket changed in place
    _, ops = converge(k, _with_rates(t, c, up=10_000_000, down=50_000_000))
    assert ops == [SetShaper(Shaper(shaper, 10_000_000))]
    # the limit goes: C's port is back in the bridge, the stage is gone
    desired, ops = converge(k, t)
    assert Attach(c, br) in ops and (DelLink(arrival) in ops or DelLink(shaper) in ops)
    assert k.observe().links == desired.links and k.observe().attachments == desired.attachments


def intent_mac(intent, vm):
    return next(v for v in intent.vms if v.name == vm).nics[0].mac


DOT1X = Path(__file__).parents[2] / "tests" / "lab" / "dot1x.yaml"


def switch_tables(v_prov):
    """tor1's tables with V and W authorized on its port toward host6."""
    intent = load_file(DOT1X)
    port = switch_port_name("host6")
    reports = [EndpointReport(vn="n2", vnid=0, mac=intent_mac(intent, "V"), host="tor1", port=port,
                              kind=EndpointKind.DOT1X, provisioning=Provisioning.from_dict(v_prov)),
               EndpointReport(vn="n3", vnid=0, mac=intent_mac(intent, "W"), host="tor1", port=port,
                              kind=EndpointKind.DOT1X)]
    declared = declared_endpoints(intent)
    eps = declared + reported_endpoints(intent, reports, declared)
    return intent, port, compute_tables(intent, eps, allocate([e.key for e in eps], {}))["tor1"]


def test_a_mac_limited_upstream_on_a_switch_port_gets_its_own_class_on_the_ports_stage():
    intent, port, t = switch_tables({"rate_up_bps": 20_000_000, "rate_down_bps": 40_000_000})
    v, w = intent_mac(intent, "V"), intent_mac(intent, "W")
    shaper, arrival = stage_names(port)
    k = FakeKernel(frozenset({port}))
    desired, _ = converge(k, t)
    (down,) = [c for c in k.observe().mac_classes if c.port == port]
    (up,) = [c for c in k.observe().mac_classes if c.port == shaper]
    assert (down.rate_bps, up.rate_bps) == (40_000_000, 20_000_000)
    assert {Link(shaper, "veth", peer=arrival, mtu=1550), Link(arrival, "veth", peer=shaper, mtu=1550)} <= k.observe().links
    stage = desired.nft_text[desired.nft_text.index("chain stage_up"):]
    assert f'iifname "{port}" ether saddr {{ {v} }} meta priority set ether saddr map {{ {v} : 7e04:{up.minor:x} }}' \
           f' fwd to "{shaper}"' in stage  # W's frames are not staged: nothing of W waits behind V
    access_in = desired.nft_text[desired.nft_text.index("chain access_in"):]
    assert f'"{arrival}" . {v}' in access_in and f'"{arrival}" . {w}' not in access_in
    assert "stage_down" not in desired.nft_text  # a switch port is in no bridge
    # CoA: V's up rate changes in place, nothing else is touched
    _, _, faster = switch_tables({"rate_up_bps": 30_000_000, "rate_down_bps": 40_000_000})
    _, ops = converge(k, faster)
    assert ops == [SetMacClass(MacClass(shaper, up.minor, 30_000_000))]
    # no up limit any more: the class and the stage go, the down class stays
    _, _, down_only = switch_tables({"rate_down_bps": 40_000_000})
    _, ops = converge(k, down_only)
    assert {type(o).__name__ for o in ops} == {"DelMacClass", "DelLink", "SetRuleset"}
    assert {c.port for c in k.observe().mac_classes} == {port}


def test_the_periodic_full_pass_repairs_what_an_incremental_pass_cannot_see():
    """Between full passes the agent trusts what it applied (converged=); a change made behind
    its back is invisible to such a pass, and the next full pass (every `resync`) repairs it."""
    intent, k = host2_kernel()
    desired, _ = converge(k, tables_for(intent, "host2"))
    lost = sorted(desired.vxlan_fdb, key=str)[0]
    k.apply(DelVxlanFdb(lost))  # someone removed it behind the agent's back
    assert reconcile(k, desired, converged=desired) == []  # an incremental pass does not see it
    assert reconcile(k, desired) == [AddVxlanFdb(lost)]  # the full pass reads the kernel back whole
    assert k.observe().vxlan_fdb == desired.vxlan_fdb


def test_a_switch_port_with_no_authorized_mac_is_closed():
    """An unauthenticated port's frames reach neither a VN nor the switch's own stack: the
    ingress hook drops all of it (EAPOL reaches the authenticator's tap before the hook)."""
    intent = load_file(DOT1X)
    port, other = switch_port_name("host6"), switch_port_name("a-server")
    declared = declared_endpoints(intent)
    t = compute_tables(intent, declared, allocate([e.key for e in declared], {}))["tor1"]
    nft = desired_state(t, frozenset({port, other}), 1500).nft_text
    hook = nft[nft.index("chain access_in"):]
    hook = hook[:hook.index("}\n")]
    assert f'devices = {{ "{other}", "{port}" }}' in hook and "policy drop" in hook and "vmap" not in hook
    _, _, t = switch_tables({})  # V and W authorized on host6's port: it opens, the other stays closed
    hook = desired_state(t, frozenset({port, other}), 1500).nft_text
    hook = hook[hook.index("chain access_in"):]
    assert f'"{port}", "{other}"' in hook[:hook.index("}\n")] and f'"{port}" . ' in hook and f'"{other}" . ' not in hook
