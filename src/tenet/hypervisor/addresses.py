"""Free addresses for a copy: the lowest of a VN's subnet no NIC holds. Pure."""
from __future__ import annotations

from ipaddress import IPv4Interface, IPv6Interface

from tenet.model.errors import IntentError, Problem
from tenet.model.load import _next_free, _nic_doc
from tenet.model.tenancy import Intent


def free_ip(intent: Intent, vn: str, like: IPv4Interface) -> IPv4Interface:
    """The lowest address of the VN's subnet no NIC holds (nor a routed VN's gateway)."""
    used = {n.ip.ip for vm in intent.vms for n in vm.nics if n.network == vn and n.ip}
    free = _next_free(like.network, used, first=2 if intent.vn(vn).forwarding == "ip" else 1)
    if free is None:
        raise IntentError((Problem(f"networks.{vn}", f"no free address left in {like.network}"),), "copy")
    return free


def free_ip6(intent: Intent, vn: str, like: IPv6Interface) -> IPv6Interface:
    """The lowest address of `like`'s prefix no NIC of the VN holds (hosts() skips the
    Subnet-Router anycast address)."""
    used = {a.ip for vm in intent.vms for n in vm.nics if n.network == vn for a in n.ip6}
    free = next((a for a in like.network.hosts() if a not in used), None)
    if free is None:
        raise IntentError((Problem(f"networks.{vn}", f"no free IPv6 address left in {like.network}"),), "copy")
    return IPv6Interface(f"{free}/{like.network.prefixlen}")


def copied_nics(intent: Intent, source: str, skip: frozenset[str] = frozenset()) -> list[dict]:
    """A copy's NICs: the source's (but those on `skip` VNs) with new MACs (they derive from
    the copy's name: none is given) and the lowest free addresses of each family it had."""
    vm = next(v for v in intent.vms if v.name == source)
    nics = []
    for nic in vm.nics:
        if nic.network in skip:
            continue
        spec = _nic_doc(nic)
        del spec["mac"]
        if nic.ip is not None:
            spec["ip"] = str(free_ip(intent, nic.network, nic.ip))
        if nic.ip6:
            spec["ip6"] = [str(free_ip6(intent, nic.network, a)) for a in nic.ip6]
        nics.append(spec)
    return nics
