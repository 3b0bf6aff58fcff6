"""RADIUS client for EAP pass-through (RFC 3579) over pyrad.

Every request carries EAP-Message and Message-Authenticator; every reply must carry a valid
Message-Authenticator and Response Authenticator (pyrad's enforce_ma: an invalid reply is
ignored, so a wrong shared secret ends as a timeout that says so).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pyrad import packet
from pyrad.client import Client, Timeout
from pyrad.dictionary import Dictionary

from tenet.aaa.provisioning import Provisioning, ProvisioningError, from_attributes
from tenet.wire import eap

DICTIONARY = Path(__file__).with_name("dictionary")
EAP_CHUNK = 253


class RadiusError(RuntimeError):
    pass


class RadiusTimeout(RadiusError):
    pass


@dataclass(frozen=True)
class RadiusReply:
    code: str  # challenge | accept | reject
    eap_message: bytes | None
    state: bytes | None
    attributes: dict
    provisioning: Provisioning | None


class RadiusClient:
    def __init__(self, server: str, secret: str, port: int = 1812, timeout: float = 2.0, retries: int = 2,
                 nas_ip: str = "", nas_identifier: str = "tenet") -> None:
        self.server, self.port = server, port
        self.client = Client(server=server, authport=port, secret=secret.encode(), dict=Dictionary(str(DICTIONARY)),
                             retries=retries, timeout=timeout, enforce_ma=True)
        self.nas_ip, self.nas_identifier = nas_ip, nas_identifier

    def _request(self, user_name: str, eap_message: bytes, state: bytes | None, calling: str, port_id: str):
        # os.urandom: pyrad's default draws the 16-byte authenticator one byte per getrandom call
        req = self.client.CreateAuthPacket(code=packet.AccessRequest, authenticator=os.urandom(16), User_Name=user_name)
        req.add_message_authenticator()
        for i in range(0, len(eap_message), EAP_CHUNK):
            req.AddAttribute("EAP-Message", eap_message[i : i + EAP_CHUNK])
        if state:
            req["State"] = state
        if calling:
            req["Calling-Station-Id"] = calling
        if port_id:
            req["NAS-Port-Id"] = port_id
        req["NAS-Port-Type"] = 15  # Ethernet
        req["NAS-Identifier"] = self.nas_identifier
        if self.nas_ip:
            req["NAS-IP-Address"] = self.nas_ip
        return req

    def exchange(self, user_name: str, eap_message: bytes, state: bytes | None = None,
                 calling_station_id: str = "", nas_port_id: str = "") -> RadiusReply:
        """Relay one EAP packet; return the server's verdict and its EAP answer."""
        req = self._request(user_name, eap_message, state, calling_station_id, nas_port_id)
        try:
            reply = self.client.SendPacket(req)
        except Timeout:
            raise RadiusTimeout(
                f"no valid reply from RADIUS server {self.server}:{self.port} "
                "(down, unreachable, or a wrong shared secret: replies failing the authenticator checks are dropped)"
            ) from None
        attrs = {k: reply[k] for k in reply.keys() if isinstance(k, str)}
        message = b"".join(reply["EAP-Message"]) if "EAP-Message" in reply else None
        st = reply["State"][0] if "State" in reply else None
        if reply.code == packet.AccessChallenge:
            return RadiusReply("challenge", message, st, attrs, None)
        if reply.code == packet.AccessAccept:
            try:
                prov = from_attributes(attrs)
            except ProvisioningError as e:
                raise RadiusError(f"Access-Accept from {self.server} is unusable: {e}") from None
            return RadiusReply("accept", message, st, attrs, prov)
        return RadiusReply("reject", message, st, attrs, None)

    def eap_md5_login(self, identity: str, password: str) -> RadiusReply:
        """A whole EAP-MD5 authentication as a supplicant would run it (the benchmark's ceiling)."""
        reply = self.exchange(identity, eap.encode(eap.identity_response(1, identity)))
        for _ in range(4):
            if reply.code != "challenge" or not reply.eap_message:
                return reply
            req = eap.decode(reply.eap_message)
            if req.type != eap.TYPE_MD5:
                answer = eap.nak(req.identifier)
            else:
                challenge, _ = eap.parse_md5(req)
                answer = eap.md5_response(req.identifier, password.encode(), challenge)
            reply = self.exchange(identity, eap.encode(answer), reply.state)
        return reply
