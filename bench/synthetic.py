"""A synthetic fabric for the control plane at scale (bench/scale.py, bench/compute.py).

H hosts spread over 10 physical networks joined by one router, V replicated VNs, and E
endpoints as NVO3 endpoint reports (what agents write when they admit a TES), each on a host
and a VN drawn at random from a seeded generator: the same arguments give the same fabric.
Reports, not declared VMs, because that is how a fabric of 100,000 endpoints fills up (and a
tenancy document of 100,000 VMs would exceed etcd's request size).
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from tenet.compute.endpoints import Endpoint, reported_endpoints
from tenet.model.load import load_intent
from tenet.model.tenancy import Intent
from tenet.store import keys
from tenet.store.records import EndpointKind, EndpointReport

NETWORKS = 10


@dataclass(frozen=True)
class Synthetic:
    hosts: int
    vns: int
    endpoints: int
    seed: int = 1

    def host(self, i: int) -> str:
        return f"h{i:05d}"

    def vn(self, i: int) -> str:
        return f"v{i:05d}"

    def fabric(self) -> dict:
        nets = {f"pn{n}": {"subnet": f"198.18.{n * 8}.0/21"} for n in range(NETWORKS)}
        return {
            "name": "scale",
            "underlay": {"networks": nets, "routers": {"r0": {"networks": sorted(nets)}}},
            "hosts": {self.host(i): {"network": f"pn{i % NETWORKS}"} for i in range(self.hosts)},
        }

    def tenancy(self) -> dict:
        return {"networks": {self.vn(i): {"vnid": 10000 + i, "bum": "replicate"} for i in range(self.vns)}}

    def intent(self) -> Intent:
        return load_intent({**self.fabric(), **self.tenancy()}, "synthetic")

    def report(self, i: int, host: str, vn: str) -> EndpointReport:
        mac = "02:%02x:%02x:%02x:%02x:%02x" % (0x5c, (i >> 24) & 0xFF, (i >> 16) & 0xFF, (i >> 8) & 0xFF, i & 0xFF)
        return EndpointReport(vn=vn, vnid=10000 + int(vn[1:]), mac=mac, port=f"tn{i:x}", host=host,
                              session=i + 1, kind=EndpointKind.NVO3)

    def reports(self) -> list[EndpointReport]:
        rnd = random.Random(self.seed)
        return [self.report(i, self.host(rnd.randrange(self.hosts)), self.vn(rnd.randrange(self.vns)))
                for i in range(self.endpoints)]

    def endpoints_of(self, intent: Intent) -> tuple[Endpoint, ...]:
        return reported_endpoints(intent, self.reports())


def report_key(r: EndpointReport) -> str:
    return keys.endpoint(r.host, r.vn, r.mac)
