"""The lab's etcd cluster: one member per namespace on the management network.

Clients must present a certificate of the lab's CA (`--client-cert-auth`) and then log in as
their etcd user (lab/pki.py says why not by the certificate's name). Peers speak TLS too,
and accept only certificates with the members' CN: every host sits on the same management
network, and raft carries every key (the intent with every VM's password among them), so
plain peer traffic would hand a host what RBAC keeps from it, and a peer port open to any
holder of a client certificate would let a host join as a member. The same, by hand, on
the first of three members (the others alike):

    etcd --name etcd1 --data-dir /var/lib/etcd \\
      --listen-client-urls https://198.19.254.2:2379 --advertise-client-urls https://198.19.254.2:2379 \\
      --listen-peer-urls https://198.19.254.2:2380 --initial-advertise-peer-urls https://198.19.254.2:2380 \\
      --initial-cluster etcd1=https://198.19.254.2:2380,etcd2=https://198.19.254.3:2380,etcd3=https://198.19.254.4:2380 \\
      --initial-cluster-state new --initial-cluster-token tenet \\
      --client-cert-auth --trusted-ca-file ca.pem --cert-file etcd1.pem --key-file etcd1-key.pem \\
      --peer-client-cert-auth --peer-trusted-ca-file ca.pem --peer-cert-file etcd1.pem \\
      --peer-key-file etcd1-key.pem --peer-cert-allowed-cn etcd-peer
"""
from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from tenet.lab.management import Station
from tenet.lab.pki import PEER_CN, Pki
from tenet.store.base import StoreError
from tenet.store.etcd import EtcdStore, Login, Tls

CLIENT_PORT = 2379
PEER_PORT = 2380


def _ip(m: Station) -> str:
    return str(m.ip.ip)


def member_argv(m: Station, members: Sequence[Station], pki: Pki, data: Path, token: str) -> list[str]:
    etcd = shutil.which("etcd")
    if etcd is None:
        raise FileNotFoundError("the etcd binary is not installed (scripts/setup.sh installs etcd-server)")
    client, peer = f"https://{_ip(m)}:{CLIENT_PORT}", f"https://{_ip(m)}:{PEER_PORT}"
    return [etcd, "--name", m.name, "--data-dir", str(data / m.name),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", ",".join(f"{x.name}=https://{_ip(x)}:{PEER_PORT}" for x in members),
            "--initial-cluster-state", "new", "--initial-cluster-token", token,
            "--client-cert-auth", "--trusted-ca-file", str(pki.ca),
            "--cert-file", str(pki.cert(m.name)), "--key-file", str(pki.key(m.name)),
            "--peer-client-cert-auth", "--peer-trusted-ca-file", str(pki.ca),
            "--peer-cert-file", str(pki.cert(m.name)), "--peer-key-file", str(pki.key(m.name)),
            "--peer-cert-allowed-cn", PEER_CN, "--logger", "zap", "--log-outputs", "stderr"]


def client_url(members: Sequence[Station], pki: Pki, user: str, netns: str | None = None) -> str:
    """The store URL for etcd user `user` (its certificate, its password file); `netns`: from
    outside the management network, entering that namespace for every connection."""
    query = {"cacert": pki.ca, "cert": pki.cert(user), "key": pki.key(user), "user": user, "password-file": pki.password(user)}
    if netns:
        query["netns"] = netns
    return "etcd://" + ",".join(f"{_ip(m)}:{CLIENT_PORT}" for m in members) + "?" + urlencode(query, safe="/")


@dataclass(frozen=True)
class MemberStatus:
    name: str
    id: str | None  # None: it did not answer
    leader: str | None


def statuses(members: Sequence[Station], pki: Pki, user: str, netns: str | None = None) -> list[MemberStatus]:
    """Each member's own view: its id and the leader it follows (no leader: None)."""
    out = []
    for m in members:
        store = EtcdStore([(_ip(m), CLIENT_PORT)], Tls(str(pki.ca), str(pki.cert(user)), str(pki.key(user))), timeout=1.0,
                          patience=0.3, login=Login(user, str(pki.password(user))), netns=netns)
        try:
            s = store.request("/v3/maintenance/status", {})
            out.append(MemberStatus(m.name, s["header"]["member_id"], s.get("leader") or None))
        except StoreError:
            out.append(MemberStatus(m.name, None, None))
        finally:
            store.close()
    return out


def healthy(ss: Sequence[MemberStatus]) -> bool:
    """Every member answers and all follow one leader, which is one of them."""
    leaders = {s.leader for s in ss}
    return all(s.id for s in ss) and len(leaders) == 1 and leaders <= {s.id for s in ss}


def leader(ss: Sequence[MemberStatus]) -> str | None:
    """The leader's name, if one is known to the members that answer."""
    ids = {s.id: s.name for s in ss if s.id}
    return next((ids[s.leader] for s in ss if s.leader in ids), None)
