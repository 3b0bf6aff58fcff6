"""The EAP peer a proxy host speaks for its VMs: tenet-tes's (tes/peer.py) — MD5, or PEAP/TTLS
checking the server's certificate against the RADIUS CA — behind the pure proxy state machine's
`EapPeer` (agent/proxy8021x.py). Reading the CA is an effect: it happens here, at the edge."""
from __future__ import annotations

import logging

from tenet.agent.proxy8021x import Credentials, PeerGaveUp
from tenet.tes.methods import Credentials as PeerCredentials, MethodError
from tenet.tes.peer import NAMES, Peer
from tenet.wire import eap

log = logging.getLogger("tenet.proxy")


class TesPeer:
    """One VM's authentication."""

    def __init__(self, creds: Credentials, ca: str = "") -> None:
        self.peer = Peer(PeerCredentials(creds.identity, creds.password, ca), (NAMES[creds.method],))

    def answer(self, payload: bytes) -> bytes | None:
        try:
            return self.peer.answer(payload)
        except MethodError as e:
            log.warning("EAP for a VM given up: %s", e)
            raise PeerGaveUp(str(e), eap.encode(e.last) if e.last is not None else None) from None

    @property
    def believes_success(self) -> bool:
        return self.peer.believes_success
