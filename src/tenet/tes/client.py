"""The tenant end system side of NVO3 auto-attachment (docs/protocol.md).

A TES that knows only its VN (name and/or ID) and its credentials: discover, collect offers,
select by policy, request, authenticate (EAP-MD5, -TLS, -TTLS or PEAP: tes/peer.py), keep
alive, rediscover when its NVE stops answering, terminate on shutdown. Link I/O is injected
(`Link`), so the whole exchange also runs against a fake in tests.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tenet.tes.methods import DEFAULT_FRAGMENT, Credentials, MethodError
from tenet.tes.peer import Peer
from tenet.tes.selection import (  # noqa: F401  (re-exported: the offer and the policies lived here)
    CAPABILITY_MAX, POLICIES, TYPE_RANK, Known, Offer, default_policy, first_answer, learned, settled,
)
from tenet.wire import eap
from tenet.wire.discovery import BROADCAST, Message, MsgType, NveType, Reason, ReasonCode, Tlv, TlvType

log = logging.getLogger("tenet.tes")

IDENTITY_ID = 1  # EAP identifier of the Response/Identity a REQUEST carries (no Request preceded it)


class Link(Protocol):
    mac: str
    ip: str  # "10.1.0.9/24" or "": announced so that routed VNs can route to it

    def send(self, dst: str, msg: Message) -> None: ...
    def recv(self, timeout: float) -> tuple[str, Message] | None: ...
    def attached(self, nve: str, result: Message) -> None: ...  # apply what AUTH-RESULT gave
    def detached(self) -> None: ...
    # and optionally `nves`: the addresses DISCOVER is unicast to (the only NVEs that can offer)


@dataclass
class Config:
    vn_name: str | None
    vnid: int
    identity: str
    password: str
    offer_window: float = 0.02  # offers from NVEs on the same L2 arrive within a millisecond
    capability_ceiling: int = CAPABILITY_MAX  # an access switch offering this much ends the window
    request_retries: int = 3
    request_interval: float = 1.0
    missed_acks: int = 3
    fail_backoff: float = 5.0
    policy: str = "default"
    methods: tuple[int, ...] = (eap.TYPE_MD5,)  # EAP types we accept, preferred first (tes/peer.py NAMES)
    ca: str = ""  # TLS, TTLS, PEAP: the CA the server's certificate must come from
    cert: str = ""  # TLS: our certificate and key
    key: str = ""
    server_name: str = ""  # if set, the server's certificate must name it
    fragment_size: int = DEFAULT_FRAGMENT

    @property
    def credentials(self) -> Credentials:
        return Credentials(self.identity, self.password, self.ca, self.cert, self.key, self.server_name,
                           self.fragment_size)


@dataclass
class Attachment:
    nve: str
    session: int
    vnid: int
    hello_interval: float
    provisioning: dict


class AuthFailed(RuntimeError):
    pass


class Tes:
    def __init__(self, link: Link, cfg: Config, clock: Callable[[], float] = time.monotonic) -> None:
        self.link, self.cfg, self.clock = link, cfg, clock
        self.attachment: Attachment | None = None
        self.known = Known()  # the NVEs that offered in the last full window
        self.peer = Peer(cfg.credentials, cfg.methods)  # anew for each authentication

    def _answering(self, now: float) -> frozenset[str]:
        """The NVEs that can answer a DISCOVER: a configured unicast list is exactly that;
        else those learned from the last full window, while fresh."""
        configured = getattr(self.link, "nves", ())
        return frozenset(configured) if configured else self.known.at(now)

    def forget_nves(self) -> None:
        """An NVE failed us: wait the whole window next time, to learn who answers now."""
        self.known = Known()

    # -- discovery ---------------------------------------------------------------------
    def _discover_tlvs(self, uniq: bytes) -> tuple[Tlv, ...]:
        tlvs = [Tlv(TlvType.HOST_UNIQ, uniq), Tlv(TlvType.TES_MAC, self.link.mac)]
        if self.link.ip:
            tlvs.append(Tlv(TlvType.TES_IP, self.link.ip))
        if self.cfg.vn_name:
            tlvs.insert(0, Tlv(TlvType.VN_NAME, self.cfg.vn_name))
        return tuple(tlvs)

    def discover(self) -> list[Offer]:
        """The offers received until no better one can come or the window ends; a window that
        ran its course teaches which NVEs answer (tes/selection.py)."""
        uniq = os.urandom(8)
        self.link.send(BROADCAST, Message(MsgType.DISCOVER, 0, self.cfg.vnid, self._discover_tlvs(uniq)))
        offers: list[Offer] = []
        start = self.clock()
        known, deadline = self._answering(start), start + self.cfg.offer_window
        while (left := deadline - self.clock()) > 0:
            got = self.link.recv(left)
            if got is None:
                continue  # a receive may return early: the deadline, not the link, ends the window
            src, msg = got
            if msg.type is MsgType.OFFER and msg.get(TlvType.HOST_UNIQ) == uniq:
                nve_type = msg.get(TlvType.NVE_TYPE) or NveType.HYPERVISOR
                offers.append(Offer(src, nve_type, int(msg.get(TlvType.NVE_CAPABILITY) or 0), msg.vnid, len(offers)))
                if settled(self.cfg.policy, offers, known, self.cfg.capability_ceiling):
                    log.info("no better offer can come: selecting after %.1f ms", (self.clock() - start) * 1e3)
                    return offers
        self.known = learned(offers, self.clock())
        return offers

    def request(self, offer: Offer) -> tuple[int, Message | None]:
        """REQUEST until CONFIRM; return the session id and any EAP request that came with it.
        The REQUEST carries our EAP-Response/Identity (identifier IDENTITY_ID), so the NVE can
        ask RADIUS at once instead of asking us first; an NVE that ignores it asks as usual."""
        uniq = os.urandom(8)
        ident = Tlv(TlvType.EAP_PAYLOAD, eap.encode(eap.identity_response(IDENTITY_ID, self.cfg.identity)))
        for _ in range(self.cfg.request_retries):
            self.link.send(offer.nve, Message(MsgType.REQUEST, 0, offer.vnid, (*self._discover_tlvs(uniq), ident)))
            deadline = self.clock() + self.cfg.request_interval
            while (left := deadline - self.clock()) > 0:
                got = self.link.recv(left)
                if got is None:
                    break
                _, msg = got
                if msg.type is MsgType.CONFIRM and msg.get(TlvType.HOST_UNIQ) == uniq:
                    return msg.session_id, None
        return 0, None

    # -- authentication ----------------------------------------------------------------
    def _answer_eap(self, nve: str, session: int, vnid: int, payload: bytes) -> None:
        """Answer one EAP request through the NVE; AuthFailed when our method gives up (after
        sending its last word, e.g. the TLS alert saying why)."""
        send = lambda b: self.link.send(nve, Message(MsgType.EAP, session, vnid, (Tlv(TlvType.EAP_PAYLOAD, b),)))  # noqa: E731
        try:
            ans = self.peer.answer(payload)
        except MethodError as e:
            if e.last is not None:
                send(eap.encode(e.last))
            raise AuthFailed(str(e)) from None
        if ans is not None:
            send(ans)

    def authenticate(self, offer: Offer, session: int, timeout: float = 25.0) -> Attachment:
        """EAP until AUTH_RESULT. `timeout` is per round, not for the whole exchange (EAP-TLS
        runs to ten): longer than the NVE's retransmissions of a request (3 + 6 + 12 s,
        docs/protocol.md), so a lost frame is recovered rather than given up."""
        self.peer = Peer(self.cfg.credentials, self.cfg.methods)
        deadline = self.clock() + timeout
        while (left := deadline - self.clock()) > 0:
            got = self.link.recv(left)
            if got is None:
                break
            _, msg = got
            if msg.session_id != session:
                continue
            if msg.type is MsgType.EAP and isinstance(msg.get(TlvType.EAP_PAYLOAD), bytes):
                deadline = self.clock() + timeout  # the NVE is alive: a new round's wait
                self._answer_eap(offer.nve, session, msg.vnid or offer.vnid, msg.get(TlvType.EAP_PAYLOAD))  # type: ignore[arg-type]
            elif msg.type is MsgType.AUTH_RESULT:
                if msg.get(TlvType.AUTH_STATUS) != 0:
                    reason = msg.get(TlvType.REASON)
                    why = reason.text if isinstance(reason, Reason) else "rejected"
                    raise AuthFailed(f"{why} ({self.peer.failure})" if self.peer.failure else why)
                if not self.peer.believes_success:
                    why = "the NVE announced success before the server proved itself: not believed"
                    self.link.send(offer.nve, Message(MsgType.TERMINATE, session, msg.vnid or offer.vnid,
                                                      (Tlv(TlvType.REASON, Reason(ReasonCode.AUTH_FAILED, why)),)))
                    raise AuthFailed(why)
                prov = {t.name.lower(): msg.get(t) for t in (TlvType.VLAN, TlvType.QOS, TlvType.RATE_UP, TlvType.TES_IP, TlvType.SESSION_TIMEOUT, TlvType.FILTER_ID, TlvType.ACCESS_TUNNEL) if msg.get(t) is not None}
                log.info("authenticated with %s", self.peer.summary())
                self.link.attached(offer.nve, msg)
                return Attachment(offer.nve, session, msg.vnid, float(msg.get(TlvType.HELLO_INTERVAL) or 1), prov)
            elif msg.type is MsgType.TERMINATE:
                raise AuthFailed("NVE terminated the session")
        raise AuthFailed("authentication timed out")

    def attach(self, should_stop: Callable[[], bool] = lambda: False) -> Attachment | None:
        """Discover → select → request → authenticate, until attached (AuthFailed; None if stopped)."""
        while not should_stop():
            offers = self.discover()
            if not offers:
                log.info("no offer for %s; discovering again", self.cfg.vn_name or self.cfg.vnid)
                continue
            offer = POLICIES[self.cfg.policy](offers)
            log.info("selected %s (%s, capability %d) among %d offers", offer.nve, offer.nve_type.name.lower(),
                     offer.capability, len(offers))
            session, _ = self.request(offer)
            if not session:
                self.forget_nves()
                continue
            try:
                self.attachment = self.authenticate(offer, session)
            except AuthFailed:
                self.forget_nves()
                raise
            log.info("attached to %s: session %08x, VN-ID %d", offer.nve, session, self.attachment.vnid)
            return self.attachment
        return None

    # -- keepalive ---------------------------------------------------------------------
    def keepalive(self, should_stop: Callable[[], bool], moved: Callable[[], bool] = lambda: False) -> str:
        """HELLO every interval; answers re-authentication; returns why the session ended.
        `moved`: the hypervisor says the VM runs behind another NVE now (tes/nudge.py): the
        session is over here (the old NVE ended it when the port left) and we rediscover."""
        a = self.attachment
        assert a is not None
        missed, next_hello = 0, self.clock()
        while not should_stop():
            if moved():
                self.attachment = None
                self.link.detached()
                self.forget_nves()
                return "moved"
            now = self.clock()
            if now >= next_hello:
                if missed >= self.cfg.missed_acks:
                    self.link.detached()
                    self.forget_nves()
                    return "nve-silent"
                self.link.send(a.nve, Message(MsgType.HELLO, a.session, a.vnid))
                missed += 1
                next_hello = now + a.hello_interval
            got = self.link.recv(max(0.0, min(next_hello - self.clock(), 0.2)))
            if got is None:
                continue
            _, msg = got
            if msg.session_id != a.session:
                continue
            if msg.type is MsgType.HELLO_ACK:
                missed = 0
            elif msg.type is MsgType.EAP and isinstance(msg.get(TlvType.EAP_PAYLOAD), bytes):
                try:  # re-authentication: the NVE's verdict (a TERMINATE if rejected) ends the session
                    self._answer_eap(a.nve, a.session, a.vnid, msg.get(TlvType.EAP_PAYLOAD))  # type: ignore[arg-type]
                except AuthFailed as e:
                    log.error("re-authentication failed on our side: %s", e)
            elif msg.type is MsgType.TERMINATE:
                self.link.detached()
                return "terminated"
        return "stopped"

    def terminate(self) -> None:
        a = self.attachment
        if a is not None:
            reason = Tlv(TlvType.REASON, Reason(ReasonCode.SHUTDOWN, "TES shutting down"))
            self.link.send(a.nve, Message(MsgType.TERMINATE, a.session, a.vnid, (reason,)))
            self.attachment = None
            self.link.detached()
