"""A TES's EAP conversation driven straight against a RADIUS server, no NVE between: the
methods' test against the real FreeRADIUS, and the ceiling a benchmark compares the NVE with.
The same `Peer` answers as inside `tenet-tes`; RadiusClient plays the authenticator."""
from __future__ import annotations

from dataclasses import dataclass

from tenet.aaa.radius import RadiusClient, RadiusReply
from tenet.tes.methods import MethodError
from tenet.tes.peer import Peer
from tenet.wire import eap

MAX_ROUNDS = 64  # a TLS exchange takes 6-12; a server looping past this is broken


@dataclass(frozen=True)
class Login:
    reply: RadiusReply  # the last: accept, reject (or a challenge if our method gave up)
    rounds: int  # Access-Requests sent
    peer: Peer
    error: str = ""  # our method's reason for giving up, if it did

    @property
    def accepted(self) -> bool:
        return self.reply.code == "accept" and self.peer.believes_success and not self.error


def login(client: RadiusClient, peer: Peer, calling_station_id: str = "", nas_port_id: str = "") -> Login:
    """Authenticate `peer` through `client`: Identity first, then whatever the server asks."""
    identity = peer.cred.identity
    reply = client.exchange(identity, eap.encode(eap.identity_response(1, identity)), None, calling_station_id, nas_port_id)
    rounds = 1
    while reply.code == "challenge" and reply.eap_message and rounds < MAX_ROUNDS:
        try:
            answer = peer.answer(reply.eap_message)
        except MethodError as e:
            if e.last is not None:  # let the server see our alert: it ends the exchange its way
                reply = client.exchange(identity, eap.encode(e.last), reply.state, calling_station_id, nas_port_id)
                rounds += 1
            return Login(reply, rounds, peer, str(e))
        if answer is None:
            break
        reply = client.exchange(identity, answer, reply.state, calling_station_id, nas_port_id)
        rounds += 1
    return Login(reply, rounds, peer)
