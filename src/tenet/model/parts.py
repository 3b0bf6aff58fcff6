"""The document's two parts: the fabric (what exists: physical networks, routers, hosts,
switches — in a deployment partly registered by the hosts themselves) and the tenancy (what
tenants get: tenants, VNs, VMs, users, servers, virtual routers and links — what operators
change every day with `tenet apply`). A topology file may hold both in one mapping (the lab's
file, a public contract: keys are only ever added); the store holds each part under its own
key, so an edit of one is a compare-and-swap that cannot touch the other.
"""
from __future__ import annotations

FABRIC = frozenset({"name", "underlay", "hosts", "switches"})
TENANCY = frozenset({"tenants", "networks", "vms", "aaa", "servers", "vrouters", "vlinks"})
LAB = frozenset({"control"})  # read by the lab only (lab/control.py), never stored


def split(doc: dict) -> tuple[dict, dict]:
    """(fabric, tenancy) of a whole document; lab-only keys go to neither."""
    return ({k: v for k, v in doc.items() if k in FABRIC}, {k: v for k, v in doc.items() if k in TENANCY})


def join(fabric: dict, tenancy: dict) -> dict:
    """One whole document from its parts (each holds only its own keys)."""
    return {**{k: v for k, v in fabric.items() if k in FABRIC}, **{k: v for k, v in tenancy.items() if k in TENANCY}}
