"""The host's 802.1X supplicant on behalf of its VMs (seed 000), as a pure state machine.

A VM runs nothing and holds no credentials: when its port appears, the host authenticates it
toward the switch with EAPOL frames whose *source is the VM's MAC*, answering EAP with the
identity and secret the host keeps for that VM — EAP-MD5, or PEAP-MSCHAPv2 / TTLS-PAP inside a
TLS tunnel whose server certificate it checks against the RADIUS CA it was given (the EAP peer
is tenet-tes's, tes/peer.py, handed in by the I/O as `peer_for`); when the VM goes (removed, migrated away) the host sends
EAPOL-Logoff for it. A VM without a secret gets no EAPOL at all: the switch may
admit it by MAB when it speaks. Events in (a VM port up or down, an EAPOL frame to a VM's
MAC, time), frames out.

Like any 802.1X supplicant it answers a repeated EAP-Request again (the switch retransmits one
whose answer was lost; EAP-MD5's answer is the same each time), and when the switch falls
silent mid-exchange for authPeriod — it dropped the attempt because RADIUS failed — it starts
over with EAPOL-Start rather than waiting for ever.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from collections.abc import Callable
from typing import Protocol

from tenet.wire import eap
from tenet.wire.eapol import PAE_GROUP, Eapol, EapolType

START_PERIOD = 5.0  # EAPOL-Start again while the switch is silent (802.1X's default is 30 s) …
MAX_START = 3  # … at most this many times, then wait for the switch to ask
HELD_PERIOD = 60.0  # after an EAP-Failure, the same as the switch's quiet period
AUTH_PERIOD = 30.0  # 802.1X authPeriod: no EAP-Request this long mid-exchange -> start again


@dataclass(frozen=True)
class Credentials:
    identity: str
    password: str
    method: str = "md5"  # md5 | peap | ttls


class PeerGaveUp(RuntimeError):
    """The VM's EAP method cannot go on (the server is not the one the host trusts, or broke
    the method's rules); `last`: an EAP packet to send before giving up (a TLS alert), if any."""

    def __init__(self, why: str, last: bytes | None = None) -> None:
        super().__init__(why)
        self.last = last


class EapPeer(Protocol):
    """One authentication's peer side: the response to a request (None: nothing to answer)."""

    def answer(self, payload: bytes) -> bytes | None: ...

    @property
    def believes_success(self) -> bool: ...


@dataclass(frozen=True)
class Emit:
    src: str  # the VM's MAC
    dst: str
    frame: Eapol


@dataclass(frozen=True)
class Vm:
    mac: str
    creds: Credentials
    state: str  # connecting | authenticating | authorized | held
    since: float
    starts: int = 1


@dataclass
class Proxy:
    peer_for: Callable[["Credentials"], EapPeer]  # tes/peer.py's (agent/proxy_peer.py), handed in by the I/O
    vms: dict[str, Vm] = field(default_factory=dict)
    peers: dict[str, EapPeer] = field(default_factory=dict)  # MAC -> its EAP peer (one authentication's state)

    def _peer(self, vm: Vm) -> EapPeer:
        peer = self.peers.get(vm.mac)
        if peer is None:
            peer = self.peers[vm.mac] = self.peer_for(vm.creds)
        return peer

    def vm_up(self, now: float, mac: str, creds: Credentials | None) -> list[Emit]:
        if creds is None or mac in self.vms:
            return []  # no secret: MAB is the switch's business; already known: level, not edge
        self.vms[mac] = Vm(mac, creds, "connecting", now)
        self.peers.pop(mac, None)
        return [Emit(mac, PAE_GROUP, Eapol(EapolType.START))]

    def vm_down(self, mac: str) -> list[Emit]:
        self.peers.pop(mac, None)
        if self.vms.pop(mac, None) is None:
            return []
        return [Emit(mac, PAE_GROUP, Eapol(EapolType.LOGOFF))]

    def on_eapol(self, now: float, dst: str, src: str, f: Eapol) -> list[Emit]:
        """A frame from the switch (`src`) to one of our VMs (`dst`)."""
        vm = self.vms.get(dst)
        if vm is None or f.type is not EapolType.EAP:
            return []
        try:
            req = f.eap
        except ValueError:
            return []
        if req.code is eap.EapCode.SUCCESS:
            peer = self.peers.get(dst)
            if peer is not None and not peer.believes_success:  # PEAP/TTLS: only once the server proved itself
                self.vms[dst] = replace(vm, state="held", since=now)
                return [Emit(dst, src, Eapol(EapolType.LOGOFF))]
            self.vms[dst] = replace(vm, state="authorized", since=now)
            return []
        if req.code is eap.EapCode.FAILURE:
            self.vms[dst] = replace(vm, state="held", since=now)
            return []
        if req.code is not eap.EapCode.REQUEST:
            return []
        try:
            ans = self._peer(vm).answer(f.body)
        except PeerGaveUp as e:  # the server is not the one we trust, or broke its method's rules
            self.peers.pop(dst, None)
            self.vms[dst] = replace(vm, state="held", since=now)
            return [Emit(dst, src, Eapol(EapolType.EAP, e.last))] if e.last is not None else []
        if ans is None:
            return []
        if vm.state != "authorized":
            self.vms[dst] = replace(vm, state="authenticating", since=now)
        return [Emit(dst, src, Eapol(EapolType.EAP, ans))]  # to the switch port that asked, from the VM

    def tick(self, now: float) -> list[Emit]:
        out: list[Emit] = []
        for mac, vm in list(self.vms.items()):
            if vm.state == "connecting" and now - vm.since >= START_PERIOD * vm.starts and vm.starts < MAX_START:
                self.vms[mac] = replace(vm, starts=vm.starts + 1)
                out.append(Emit(mac, PAE_GROUP, Eapol(EapolType.START)))
            elif vm.state == "authenticating" and now - vm.since >= AUTH_PERIOD:
                self.vms[mac] = Vm(mac, vm.creds, "connecting", now)
                out.append(Emit(mac, PAE_GROUP, Eapol(EapolType.START)))
            elif vm.state == "held" and now - vm.since >= HELD_PERIOD:
                self.vms[mac] = Vm(mac, vm.creds, "connecting", now)
                out.append(Emit(mac, PAE_GROUP, Eapol(EapolType.START)))
        return out
