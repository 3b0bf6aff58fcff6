"""Who may read and write what in etcd: a role per process, derived from the key layout.

| user = role | reads | writes |
|---|---|---|
| root | everything (etcd's built-in root role): the operator, the lab | everything |
| controller | /tenet/ | /tenet/ |
| agent-<host> | /tenet/hosts/<host>/, /tenet/servable (as a range: watched), /tenet/endpoints/<host>/, /tenet/chassis/<host>, /tenet/alive/<host> | its status, admission/ and revoke/ (it clears a request it handled) under its prefix; its endpoints, chassis and alive keys |
| agent-<proxy> (an 802.1X proxy host) | /tenet/hosts/<proxy>/proxy (as a range: it watches it) | nothing |

So an agent never reads the intent (every VM's password is in it), another host's tables or
another host's endpoints, and writes nothing the controller or another host owns. etcd checks
a watch against read permission on the watched range: every agent watch is on its own keys.
Leases need no permission in etcd 3.4 (any logged-in user grants and keeps one alive;
revoking one needs write permission on the keys attached to it).

`apply` sends what the etcdctl commands of `etcdctl_script` would, in the same order (an
operator can run them by hand, `tenet store rbac --print`; every user's password comes from a
file, never from the command line):

    etcdctl role add agent-h1
    etcdctl role grant-permission agent-h1 read /tenet/hosts/h1/ --prefix
    etcdctl role grant-permission agent-h1 write /tenet/hosts/h1/status
    ... (one per grant of each role)
    etcdctl user add root --new-user-password="$(cat root.password)"
    etcdctl user grant-role root root
    etcdctl user add agent-h1 --new-user-password="$(cat agent-h1.password)"
    etcdctl user grant-role agent-h1 agent-h1
    etcdctl auth enable

Nothing is enforced until `auth enable`, the last step: a failure half-way leaves the cluster
as it was, and running `apply` again completes it (existing roles and users are kept, their
passwords set again). It only adds: a host taken out of service loses its user and role by
`etcdctl user delete agent-h9; etcdctl role delete agent-h9`.
"""
from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from tenet.model.fabric import Fabric
from tenet.store import keys
from tenet.store.base import StoreError
from tenet.store.etcd import EtcdStore, _key, _prefix_end

ROOT = "root"  # etcd's own: the root user with the root role may do everything
CONTROLLER = "controller"


class Access(str, Enum):
    READ = "READ"
    WRITE = "WRITE"
    READWRITE = "READWRITE"


@dataclass(frozen=True)
class Grant:
    key: str
    access: Access
    prefix: bool = False  # the key and every key it prefixes


@dataclass(frozen=True)
class Role:
    name: str  # also its user's name
    grants: tuple[Grant, ...]

    def allows(self, key: str, access: Access) -> bool:
        """Whether etcd lets this role READ or WRITE `key` (as it checks: any grant covers it)."""
        return any(g.access in (access, Access.READWRITE) and (key.startswith(g.key) if g.prefix else key == g.key)
                   for g in self.grants)


def agent_user(host: str) -> str:
    return f"agent-{host}"


def controller_role() -> Role:
    return Role(CONTROLLER, (Grant(keys.ROOT, Access.READWRITE, prefix=True),))


def agent_role(host: str) -> Role:
    """An NVE's agent and its admission processes: their own host's keys, nothing else."""
    return Role(agent_user(host), (
        Grant(keys.host_prefix(host), Access.READ, prefix=True),
        Grant(keys.servable(), Access.READ, prefix=True),  # the VNs any NVE may offer: one key for all, watched
        Grant(keys.controller_observed(), Access.READ),  # how far the tables are: settles provisional rows
        Grant(keys.status(host), Access.WRITE),
        Grant(keys.admission_prefix(host), Access.WRITE, prefix=True),
        Grant(keys.revoke_prefix(host), Access.WRITE, prefix=True),
        Grant(keys.host_endpoints_prefix(host), Access.READWRITE, prefix=True),
        Grant(keys.chassis(host), Access.READWRITE),
        Grant(keys.alive(host), Access.READWRITE),
    ))


def proxy_role(host: str) -> Role:
    """An 802.1X proxy host reads the VM ports the controller published for it, and only that.
    As a range (the key and what it prefixes, where nothing else is written): etcd checks a
    watch against read permission on the whole watched range, and the proxy follows its key."""
    return Role(agent_user(host), (Grant(keys.proxy(host), Access.READ, prefix=True),))


def roles(fabric: Fabric, registered: Iterable[str] = ()) -> tuple[Role, ...]:
    """Every role but root's (built in), for the hosts and proxy hosts of `fabric` and the
    hosts that will register themselves without being declared (`registered`)."""
    declared = [h.name for h in fabric.hosts]
    named = {*declared, *(x.name for x in fabric.proxies)}
    extra = [h for h in dict.fromkeys(registered) if h not in named]
    return (controller_role(), *(agent_role(h) for h in (*declared, *extra)), *(proxy_role(x.name) for x in fabric.proxies))


def users(rs: Sequence[Role]) -> tuple[str, ...]:
    """Who needs a password: root and one user per role."""
    return (ROOT, *(r.name for r in rs))


def read_passwords(directory: str | Path, names: Sequence[str]) -> dict[str, str]:
    """Each user's password from `<directory>/<user>.password` (as lab/pki.py writes them);
    ValueError naming every file that is missing or empty."""
    out, bad = {}, []
    for user in names:
        path = Path(directory) / f"{user}.password"
        try:
            out[user] = path.read_text().strip()
        except OSError as e:
            bad.append(f"{path}: {e.strerror}")
            continue
        if not out[user]:
            bad.append(f"{path}: empty")
    if bad:
        raise ValueError("etcd user passwords: " + "; ".join(bad))
    return out


def etcdctl_script(rs: Sequence[Role], password_dir: str = ".") -> list[str]:
    """The etcdctl commands that do what `apply` does, in its order, each password read from
    `<password_dir>/<user>.password` by the shell. For a fresh cluster: `user add` fails for a
    user that exists (`apply` sets its password again instead)."""
    q = shlex.quote
    lines = []
    for r in rs:
        lines.append(f"etcdctl role add {q(r.name)}")
        for g in r.grants:
            lines.append(f"etcdctl role grant-permission {q(r.name)} {g.access.value.lower()} {q(g.key)}"
                         + (" --prefix" if g.prefix else ""))
    for user in users(rs):
        password = Path(password_dir) / f"{user}.password"
        lines.append(f'etcdctl user add {q(user)} --new-user-password="$(cat {q(str(password))})"')
        lines.append(f"etcdctl user grant-role {q(user)} {q(user)}")
    lines.append("etcdctl auth enable")
    return lines


def _perm(g: Grant) -> dict:
    perm = {"permType": g.access.value, "key": _key(g.key)}
    if g.prefix:
        perm["range_end"] = _prefix_end(g.key)
    return perm


def _add(store: EtcdStore, path: str, body: dict, exists: str) -> bool:
    """Create something; False if it already exists."""
    try:
        store.request(path, body)
        return True
    except StoreError as e:
        if exists in str(e):
            return False
        raise


def apply(store: EtcdStore, rs: Sequence[Role], passwords: Mapping[str, str]) -> None:
    """Create `rs` and their users, then root, then enable auth (see the module's docstring).
    `store` must be allowed to: root, or anyone while auth is still off."""
    missing = [u for u in users(rs) if not passwords.get(u)]
    if missing:
        raise ValueError(f"no password for etcd user(s) {', '.join(missing)}")
    for r in rs:
        _add(store, "/v3/auth/role/add", {"name": r.name}, "role name already exists")
        for g in r.grants:
            store.request("/v3/auth/role/grant", {"name": r.name, "perm": _perm(g)})
    for user in users(rs):
        if not _add(store, "/v3/auth/user/add", {"name": user, "password": passwords[user]}, "user name already exists"):
            store.request("/v3/auth/user/changepw", {"name": user, "password": passwords[user]})
        store.request("/v3/auth/user/grant", {"user": user, "role": user})
    store.request("/v3/auth/enable", {})

