"""Key layout. The controller writes intent-derived keys; an agent reads only its host's.
Every value is a record of store/records.py (named per key there).

| key | writer | value |
|---|---|---|
| /tenet/fabric | operator (lab, CLI) | the fabric part of the document: physical networks, routers, declared hosts |
| /tenet/tenancy | operator (`tenet apply`, lab, CLI) | the tenancy part: tenants, VNs, VMs, users, servers, VRs, links |
| /tenet/chassis/<host> | the host's agent | its registration: network, uplink address, role (permanent) |
| /tenet/alive/<host> | the host's agent | under the agent's lease: the host is up |
| /tenet/alloc/extmac/<vn>/<vm>/<nic> | controller | external MAC of that NIC |
| /tenet/hosts/<host>/tables | controller | the head of the host's tables: generation, host-level fields, its VN tables by digest |
| /tenet/hosts/<host>/tables/<vn> | controller | the host's table of one VN (store/published.py) |
| /tenet/servable | controller | the VNs any NVE may offer (NVO3), once for every host |
| /tenet/hosts/<host>/status | the host's agent | generation applied and state (JSON) |
| /tenet/hosts/<host>/admission/<shard> | the host's admission processes | serving: pid, VNs offered |
| /tenet/hosts/<host>/revoke/<vn>/<mac> | operator (CLI, API) | end that TES's session in that VN, and why |
| /tenet/hosts/<proxy>/proxy | controller | an 802.1X proxy host's VM ports, with their credentials |
| /tenet/endpoints/<host>/<vn>/<mac> | the host's agent | a dynamically attached endpoint |
| /tenet/controller/leader | the leading controller, under its lease | who leads; the key's create revision is its term |
| /tenet/controller/observed | the leading controller (fenced) | how far the published tables reflect the inputs |

Who may read and write which keys on etcd (its RBAC roles) is derived from this layout in
store/rbac.py.
"""
from __future__ import annotations

ROOT = "/tenet/"


def _part(s: str) -> str:
    if not s or "/" in s:
        raise ValueError(f"invalid key component {s!r}")
    return s


def fabric() -> str:
    return ROOT + "fabric"


def tenancy() -> str:
    return ROOT + "tenancy"


def chassis_prefix() -> str:
    return ROOT + "chassis/"


def chassis(host: str) -> str:
    return chassis_prefix() + _part(host)


def alive_prefix() -> str:
    return ROOT + "alive/"


def alive(host: str) -> str:
    return alive_prefix() + _part(host)


def hosts_prefix() -> str:
    return ROOT + "hosts/"


def host_prefix(host: str) -> str:
    return f"{hosts_prefix()}{_part(host)}/"


def tables(host: str) -> str:
    return host_prefix(host) + "tables"


def tables_host(key: str) -> str | None:
    """The host whose tables `key` is, or None when it is another key."""
    head, _, host = key.removesuffix("/tables").rpartition("/")
    return host if key.endswith("/tables") and head + "/" == hosts_prefix() and host else None


def vn_tables(host: str, vn: str) -> str:
    """One VN's table on the host: under tables(host), so a watch of that prefix hears both."""
    return f"{tables(host)}/{_part(vn)}"


def vn_tables_prefix(host: str) -> str:
    return tables(host) + "/"


def servable() -> str:
    return ROOT + "servable"


def status(host: str) -> str:
    return host_prefix(host) + "status"


def proxy(host: str) -> str:
    """What an 802.1X proxy host needs of the intent: its VM ports and their credentials only."""
    return host_prefix(host) + "proxy"


def admission_prefix(host: str) -> str:
    return host_prefix(host) + "admission/"


def admission(host: str, shard: int = 0) -> str:
    """Written by each of a host's admission processes (shards) once it serves (docs/protocol.md)."""
    return f"{admission_prefix(host)}{int(shard)}"


def revoke_prefix(host: str) -> str:
    """Requests to end TES sessions on a host (`tenet detach`): one key per VN and MAC, so two
    tenants ending their own TESs of one MAC never overwrite each other's request. The MAC is
    the last part, as in the keys written before the VN was (revoke/<mac>)."""
    return host_prefix(host) + "revoke/"


def revoke(host: str, mac: str, vn: str = "") -> str:
    return revoke_prefix(host) + (f"{_part(vn)}/" if vn else "") + _part(mac)


def revoke_parts(host: str, key: str) -> tuple[str, str]:
    """(vn, mac) of a revoke key; vn "" for a key of the older form revoke/<mac>."""
    vn, _, mac = key[len(revoke_prefix(host)):].rpartition("/")
    return vn, mac


def extmac_prefix() -> str:
    return ROOT + "alloc/extmac/"


def extmac(vn: str, vm: str, nic: int) -> str:
    return f"{extmac_prefix()}{_part(vn)}/{_part(vm)}/{int(nic)}"


def endpoints_prefix() -> str:
    return ROOT + "endpoints/"


def endpoint(host: str, vn: str, mac: str) -> str:
    return f"{endpoints_prefix()}{_part(host)}/{_part(vn)}/{_part(mac)}"


def host_endpoints_prefix(host: str) -> str:
    """Every endpoint one host's agent reported (it reads them back after a restart)."""
    return f"{endpoints_prefix()}{_part(host)}/"


def controller_prefix() -> str:
    return ROOT + "controller/"


def controller_leader() -> str:
    """Held by the leading controller replica under its lease (controller/leadership.py)."""
    return controller_prefix() + "leader"


def controller_observed() -> str:
    """Written by the leader: every input up to a revision is in the published tables."""
    return controller_prefix() + "observed"
