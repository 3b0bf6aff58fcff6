"""Reachability and isolation measured with real packets.

Every ordered pair of VM NICs is probed with ping. Judging by replies alone is not enough when
tenants reuse addresses (the reply could come from the same IP in another VN), so each VM's
ICMP InEchos counter is read before and after: a VM must receive exactly the echoes sent to
its address from its own VN, and no other.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tenet.model.tenancy import Intent


@dataclass(frozen=True)
class Nic:
    vm: str
    vn: str
    ip: str  # address only
    mac: str


@dataclass(frozen=True)
class Probe:
    src: Nic
    dst: Nic
    answered: bool
    answer_mac: str  # MAC the source resolved the destination IP to ("" if none)
    sent: int  # echo requests sent (a same-VN probe is retried once)


@dataclass(frozen=True)
class Reachability:
    probes: tuple[Probe, ...]
    received: dict[str, int]  # VM -> echoes it received during the run
    legit: dict[str, tuple[int, int]]  # VM -> (answered, sent) echoes from its own VN to its IP

    @property
    def failures(self) -> list[str]:
        out = []
        for p in self.probes:
            if p.src.vn == p.dst.vn and not p.answered:
                out.append(f"{p.src.vm} -> {p.dst.vm} ({p.dst.vn}): no answer")
            if p.src.vn == p.dst.vn and p.answered and p.answer_mac != p.dst.mac:
                out.append(f"{p.src.vm} -> {p.dst.vm}: answered by {p.answer_mac}, expected {p.dst.mac}")
        for vm, n in sorted(self.received.items()):
            answered, sent = self.legit.get(vm, (0, 0))
            if not answered <= n <= sent:
                out.append(f"{vm} received {n} echoes; its own VN sent it {sent}: isolation broken")
        return out


def nics(intent: Intent) -> list[Nic]:
    return [
        Nic(vm.name, n.network, str(n.ip.ip), n.mac)
        for vm in intent.vms
        for n in vm.nics[:1]
        if n.ip is not None
    ]


def _in_echos(lab, vm: str) -> int:
    text = lab.exec(vm, "cat", "/proc/net/snmp").stdout.splitlines()
    heads = [l.split() for l in text if l.startswith("Icmp:")]
    return int(heads[1][heads[0].index("InEchos")])


def _probe(lab, src: Nic, dst: Nic) -> Probe:
    # An on-link host route lets the probe leave even when dst's subnet is not src's: the ARP
    # for it then floods src's VN, which is exactly where isolation is tested.
    lab.exec(src.vm, "ip", "route", "replace", f"{dst.ip}/32", "dev", "eth0")
    ok, sent = False, 0
    for _ in range(2):
        sent += 1
        ok = lab.exec(src.vm, "ping", "-c1", "-W1", "-n", "-q", dst.ip).returncode == 0
        if ok or src.vn != dst.vn:
            break
    neigh = lab.exec(src.vm, "ip", "-4", "neigh", "show", dst.ip).stdout.split()
    mac = neigh[neigh.index("lladdr") + 1] if "lladdr" in neigh else ""
    lab.exec(src.vm, "ip", "route", "del", f"{dst.ip}/32", "dev", "eth0")
    return Probe(src, dst, ok, mac, sent)


def measure(lab, intent: Intent, workers: int = 24) -> Reachability:
    all_nics = nics(intent)
    pairs = [(s, d) for s in all_nics for d in all_nics if s.vm != d.vm and s.ip != d.ip]
    before = {n.vm: _in_echos(lab, n.vm) for n in all_nics}
    with ThreadPoolExecutor(workers) as pool:
        probes = tuple(pool.map(lambda p: _probe(lab, *p), pairs))
    after = {n.vm: _in_echos(lab, n.vm) for n in all_nics}
    legit = {n.vm: (0, 0) for n in all_nics}
    for p in probes:
        for n in all_nics:
            if n.vn == p.src.vn and n.ip == p.dst.ip:
                answered, sent = legit[n.vm]
                legit[n.vm] = (answered + p.answered, sent + p.sent)
    received = {vm: after[vm] - before[vm] for vm in before}
    return Reachability(probes, received, legit)
