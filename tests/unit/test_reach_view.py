"""The reachability verdict and its 80-column view, on made-up probe results."""
from __future__ import annotations

from tenet.lab.reach import Nic, Probe, Reachability
from tenet.lab.reach_view import WIDTH, render


def nic(vm: str, vn: str, ip: str, index: int = 0, multi: bool = False) -> Nic:
    mac = "02:" + ":".join(f"{int(x):02x}" for x in ip.split(".")) + f":{index:02x}"
    return Nic(vm, index, vn, ip, mac, f"{vm}.{index}" if multi else vm)


def result(nics: list[Nic], answer, received=None) -> Reachability:
    probes = tuple(Probe(s, d, *answer(s, d), 1) for s in nics for d in nics if s.vm != d.vm and s.ip != d.ip)
    legit = {}
    for n in nics:
        mine = [p for p in probes if any(m.vm == n.vm and m.vn == p.src.vn for m in nics)
                and any(m.vm == n.vm and m.ip == p.dst.ip for m in nics)]
        legit[n.vm] = (sum(p.answered for p in mine), len(mine))
    return Reachability(tuple(nics), probes, received or {vm: v[0] for vm, v in legit.items()}, legit)


def honest(nics: list[Nic]):
    def answer(s: Nic, d: Nic):
        owner = next((n for n in nics if n.vn == s.vn and n.ip == d.ip), None)
        owner = owner or next((n for n in nics if n.vm == d.vm and n.vn == s.vn), None)
        return (True, owner.mac) if owner else (False, "")
    return answer


def test_a_router_in_two_vns_answers_in_both_without_a_leak():
    nics = [nic("a", "x", "10.0.0.1"), nic("b", "y", "10.1.0.1"),
            nic("r", "x", "10.0.0.254", 0, True), nic("r", "y", "10.1.0.254", 1, True)]
    r = result(nics, honest(nics))
    assert r.failures == []
    assert any(p.answered for p in r.probes if p.src.vn != p.dst.vn)  # b -> r.0, answered on y


def test_an_echo_across_vns_is_a_failure():
    nics = [nic("a", "x", "10.0.0.1"), nic("b", "y", "10.0.0.2")]
    r = result(nics, lambda s, d: (True, d.mac), received={"a": 1, "b": 1})
    assert any("isolation broken" in f for f in r.failures)
    assert any("on no NIC of the prober's VN" in f for f in r.failures)


def test_a_silent_peer_in_the_same_vn_is_a_failure():
    nics = [nic("a", "x", "10.0.0.1"), nic("b", "x", "10.0.0.2")]
    r = result(nics, lambda s, d: (s.vm != "a", d.mac if s.vm != "a" else ""))
    assert r.failures == ["a -> b (x): no answer"]


def test_the_view_fits_80_columns_however_many_nics():
    for count in (3, 20, 40, 70):
        nics = [nic(f"vm-with-a-long-name-{i}", f"vn{i % 7}", f"10.{i % 7}.0.{i}") for i in range(count)]
        lines = render(result(nics, honest(nics)))
        assert max(len(line.text) for line in lines) <= WIDTH, count
        assert not any(line.style == "red" for line in lines)
