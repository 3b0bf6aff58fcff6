"""IP-based VNs: per-VN routing tables with prefix aggregation (seed 004, second embodiment)."""
from ipaddress import IPv4Address as A, IPv4Network as N

from tenet.compute.addressing import compute_tables
from tenet.compute.endpoints import declared_endpoints
from tenet.compute.extmac import allocate
from tenet.compute.routing import aggregates, router_keys
from tenet.model.load import load_intent

DOC = {
    "name": "rt",
    "underlay": {"networks": {"pn1": {"subnet": "198.18.31.0/24"}, "pn2": {"subnet": "198.18.32.0/24"}},
                 "routers": {"r": {"networks": ["pn1", "pn2"]}}},
    "hosts": {"h1": {"network": "pn1"}, "h2": {"network": "pn1"}, "h3": {"network": "pn2"}},
    "networks": {"r1": {"vnid": 7100, "subnet": "10.63.0.0/24", "forwarding": "ip"}},
    "vms": {
        "a": {"host": "h1", "network": "r1", "ip": "10.63.0.10/24"},
        "b": {"host": "h1", "network": "r1", "ip": "10.63.0.11/24"},
        "c": {"host": "h2", "network": "r1", "ip": "10.63.0.100/24"},
        "d": {"host": "h3", "network": "r1", "ip": "10.63.0.200/24"},
    },
}


def tables(doc, known=None):
    """As the controller does: allocations persist, so pass the previous ones in."""
    intent = load_intent(doc)
    eps = declared_endpoints(intent)
    macs = allocate([e.key for e in eps] + router_keys(intent.vns, eps), known if known is not None else {})
    if known is not None:
        known.update(macs)
    return compute_tables(intent, eps, macs)


def test_aggregates_are_maximal_and_disjoint_from_other_nves():
    got = aggregates([A("10.63.0.10"), A("10.63.0.11")], [A("10.63.0.100"), A("10.63.0.200")], N("10.63.0.0/24"))
    assert got == [N("10.63.0.0/26")]
    assert aggregates([A("10.63.0.100")], [A("10.63.0.10"), A("10.63.0.101")], N("10.63.0.0/24")) == [N("10.63.0.100/32")]


def test_routing_table_per_host():
    h3 = tables(DOC)["h3"].vn("r1")
    routes = {r.prefix: r for r in h3.routes}
    assert routes["10.63.0.0/26"].address == "198.18.31.10" and routes["10.63.0.0/26"].function == "encapsulate"
    assert routes["10.63.0.200/32"].function == "deliver"
    h2 = {r.prefix: r for r in tables(DOC)["h2"].vn("r1").routes}
    assert h2["10.63.0.0/26"].function == "translate L2"  # h1 shares h2's physical network


def test_a_tes_covered_by_an_aggregate_adds_no_remote_entry():
    known: dict = {}
    before = tables(DOC, known)
    grown = {**DOC, "vms": {**DOC["vms"], "e": {"host": "h1", "network": "r1", "ip": "10.63.0.12/24"}}}
    after = tables(grown, known)
    assert after["h3"] == before["h3"]  # covered by 10.63.0.0/26: not one byte changes on h3
    assert after["h2"] == before["h2"]
    assert len(after["h1"].vn("r1").routes) == len(before["h1"].vn("r1").routes) + 1  # its own host route


def test_a_tes_inside_another_nves_aggregate_splits_it():
    grown = {**DOC, "vms": {**DOC["vms"], "e": {"host": "h3", "network": "r1", "ip": "10.63.0.20/24"}}}
    h2 = {r.prefix: r.address for r in tables(grown)["h2"].vn("r1").routes}
    assert "10.63.0.0/26" not in h2
    assert h2["10.63.0.0/28"] == "198.18.31.10" and h2["10.63.0.16/28"] == "198.18.32.10"
