"""The lower VNs' share of layering (model/layers.py): every host that carries a layered VN is
itself a member of the VN beneath, through its carrier. Pure."""
from __future__ import annotations

from tenet.compute.endpoints import Endpoint
from tenet.model.layers import carrier, layer
from tenet.model.tenancy import Intent


def with_carriers(intent: Intent, endpoints: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
    """`endpoints` plus one carrier endpoint per (lower VN, host) that some layered VN needs.
    Upper layers first, so a carrier of the top layer makes its host a member of the middle
    one, which then needs a carrier of its own on the bottom one."""
    vns = {v.name: v for v in intent.vns}
    hosts_of: dict[str, set[str]] = {}
    for ep in endpoints:
        hosts_of.setdefault(ep.vn, set()).add(ep.host)
    out, added = list(endpoints), set()
    for vn in sorted((v for v in intent.vns if v.over), key=lambda v: -layer(vns, v)):
        lower = vns[vn.over]
        for host in sorted(hosts_of.get(vn.name, ())):
            if (lower.name, host) not in added:
                added.add((lower.name, host))
                c = carrier(intent, lower, host)
                out.append(Endpoint(vn=lower.name, vm=c.vm, nic=0, mac=c.mac, ip=c.ip, host=host, port=c.port))
                hosts_of.setdefault(lower.name, set()).add(host)
    return tuple(out)
