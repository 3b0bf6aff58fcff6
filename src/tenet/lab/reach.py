"""Reachability and isolation measured with real packets.

Every ordered pair of VM and virtual-router NICs is probed with ping, each NIC on its own (a
router in two VNs has two NICs, each reachable in its own VN). Judging by replies alone is not
enough when tenants reuse addresses (the reply could come from the same IP in another VN), so
each VM's ICMP InEchos counter is read before and after: a VM must receive exactly the echoes
its own VNs sent to its addresses, and no other.

Linux answers for any of its addresses on any of its interfaces (the weak host model), so an
echo sent in VN X to a VM's address on VN Y legitimately reaches that VM when it also has a NIC
on X: that is the VM's own choice, not a leak of the network.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tenet.model.tenancy import Intent

SAME_VN_WAITS = (1, 2, 3)  # s per echo: a same-VN probe is retried (a loaded machine resolves slowly)
PROBE_TABLE = 100  # routing table of eth<i>'s probes: PROBE_TABLE + i (and the rule's priority)


@dataclass(frozen=True)
class Nic:
    vm: str
    index: int  # eth<index> inside the VM
    vn: str
    ip: str  # address only
    mac: str
    label: str  # the VM's name, or <vm>.<index> when the VM has several NICs

    @property
    def dev(self) -> str:
        return f"eth{self.index}"


@dataclass(frozen=True)
class Probe:
    src: Nic
    dst: Nic
    answered: bool
    answer_mac: str  # MAC the source resolved the destination IP to ("" if none)
    sent: int  # echo requests sent (a same-VN probe is retried until answered, up to 3)


@dataclass(frozen=True)
class Reachability:
    nics: tuple[Nic, ...]
    probes: tuple[Probe, ...]
    received: dict[str, int]  # VM -> echoes it received during the run
    legit: dict[str, tuple[int, int]]  # VM -> (answered, sent) echoes its own VNs sent to its IPs

    def owns(self, p: Probe, mac: str) -> bool:
        """Whether `mac` answering probe `p` is legitimate: a NIC on the prober's VN of a VM
        that holds the probed address (the destination itself, the same address reused in the
        prober's VN, or a router that also sits on the prober's VN)."""
        return any(n.mac == mac and n.vn == p.src.vn and p.dst.ip in self._ips(n.vm) for n in self.nics)

    def _ips(self, vm: str) -> set[str]:
        return {n.ip for n in self.nics if n.vm == vm}

    @property
    def failures(self) -> list[str]:
        out = []
        for p in self.probes:
            if p.src.vn == p.dst.vn and not p.answered:
                out.append(f"{p.src.label} -> {p.dst.label} ({p.dst.vn}): no answer")
            elif p.src.vn == p.dst.vn and p.answer_mac != p.dst.mac:
                out.append(f"{p.src.label} -> {p.dst.label}: answered by {p.answer_mac}, expected {p.dst.mac}")
            elif p.answered and not self.owns(p, p.answer_mac):
                out.append(f"{p.src.label} ({p.src.vn}) -> {p.dst.label} ({p.dst.vn}): answered by "
                           f"{p.answer_mac}, which is on no NIC of the prober's VN holding {p.dst.ip}")
        for vm, n in sorted(self.received.items()):
            answered, sent = self.legit.get(vm, (0, 0))
            if not answered <= n <= sent:
                out.append(f"{vm} received {n} echoes; its own VNs sent it {sent}: isolation broken")
        return out


def nics(intent: Intent) -> list[Nic]:
    return [
        Nic(vm.name, i, n.network, str(n.ip.ip), n.mac, vm.name if len(vm.nics) == 1 else f"{vm.name}.{i}")
        for vm in intent.vms
        for i, n in enumerate(vm.nics)
        if n.ip is not None
    ]


def _in_echos(lab, vm: str) -> int:
    text = lab.exec(vm, "cat", "/proc/net/snmp").stdout.splitlines()
    heads = [line.split() for line in text if line.startswith("Icmp:")]
    return int(heads[1][heads[0].index("InEchos")])


def _table(nic: Nic) -> str:
    return str(PROBE_TABLE + nic.index)


def _probe(lab, src: Nic, dst: Nic) -> Probe:
    # An on-link host route through the source NIC lets the probe leave even when dst's subnet is
    # not src's: the ARP for it then floods src's VN, which is exactly where isolation is tested.
    # It lives in a table of the NIC's own that only sockets bound to the NIC consult (measure()
    # adds the rule), so a VM's answers to others' probes still follow its own routes. A VM probes
    # one destination at a time, so the neighbour entry read afterwards is this probe's own.
    lab.exec(src.vm, "ip", "route", "replace", f"{dst.ip}/32", "dev", src.dev, "table", _table(src))
    ok, sent = False, 0
    for wait in SAME_VN_WAITS:
        sent += 1
        ok = lab.exec(src.vm, "ping", "-c1", f"-W{wait}", "-n", "-q", "-I", src.dev, dst.ip).returncode == 0
        if ok or src.vn != dst.vn:
            break
    neigh = lab.exec(src.vm, "ip", "-4", "neigh", "show", dst.ip, "dev", src.dev).stdout.split()
    mac = neigh[neigh.index("lladdr") + 1] if "lladdr" in neigh else ""
    lab.exec(src.vm, "ip", "route", "del", f"{dst.ip}/32", "dev", src.dev, "table", _table(src))
    lab.exec(src.vm, "ip", "-4", "neigh", "flush", "to", dst.ip, "dev", src.dev)
    return Probe(src, dst, ok, mac, sent)


def _probe_rules(lab, all_nics: tuple[Nic, ...], verb: str) -> None:
    for n in all_nics:
        lab.exec(n.vm, "ip", "rule", verb, "oif", n.dev, "lookup", _table(n), "priority", str(PROBE_TABLE), check=True)


def measure(lab, intent: Intent, workers: int = 24) -> Reachability:
    all_nics = tuple(nics(intent))
    pairs = [(s, d) for s in all_nics for d in all_nics if s.vm != d.vm and s.ip != d.ip]
    by_vm: dict[str, list[tuple[Nic, Nic]]] = {}
    for s, d in pairs:  # one worker per source VM: its host routes never overlap
        by_vm.setdefault(s.vm, []).append((s, d))
    _probe_rules(lab, all_nics, "add")
    try:
        before = {vm: _in_echos(lab, vm) for vm in {n.vm for n in all_nics}}
        with ThreadPoolExecutor(workers) as pool:
            runs = list(pool.map(lambda ps: [_probe(lab, s, d) for s, d in ps], by_vm.values()))
        after = {vm: _in_echos(lab, vm) for vm in before}
    finally:
        _probe_rules(lab, all_nics, "del")
    probes = tuple(p for run in runs for p in run)
    legit = {vm: (0, 0) for vm in before}
    for p in probes:
        for vm in legit:
            if any(n.vm == vm and n.vn == p.src.vn for n in all_nics) and \
                    any(n.vm == vm and n.ip == p.dst.ip for n in all_nics):
                answered, sent = legit[vm]
                legit[vm] = (answered + p.answered, sent + p.sent)
    received = {vm: after[vm] - before[vm] for vm in before}
    return Reachability(all_nics, probes, received, legit)
