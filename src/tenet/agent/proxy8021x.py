"""The host's 802.1X supplicant on behalf of its VMs (seed 000), as a pure state machine.

A VM runs nothing and holds no credentials: when its port appears, the host authenticates it
toward the switch with EAPOL frames whose *source is the VM's MAC*, answering EAP with the
identity and secret the host keeps for that VM; when the VM goes (removed, migrated away) the
host sends EAPOL-Logoff for it. A VM without a secret gets no EAPOL at all: the switch may
admit it by MAB when it speaks. Events in (a VM port up or down, an EAPOL frame to a VM's
MAC, time), frames out.

Like any 802.1X supplicant it answers a repeated EAP-Request again (the switch retransmits one
whose answer was lost; EAP-MD5's answer is the same each time), and when the switch falls
silent mid-exchange for authPeriod — it dropped the attempt because RADIUS failed — it starts
over with EAPOL-Start rather than waiting for ever.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from tenet.wire import eap
from tenet.wire.eapol import PAE_GROUP, Eapol, EapolType, of_eap

START_PERIOD = 5.0  # EAPOL-Start again while the switch is silent (802.1X's default is 30 s) …
MAX_START = 3  # … at most this many times, then wait for the switch to ask
HELD_PERIOD = 60.0  # after an EAP-Failure, the same as the switch's quiet period
AUTH_PERIOD = 30.0  # 802.1X authPeriod: no EAP-Request this long mid-exchange -> start again


@dataclass(frozen=True)
class Credentials:
    identity: str
    password: str


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
    vms: dict[str, Vm] = field(default_factory=dict)

    def vm_up(self, now: float, mac: str, creds: Credentials | None) -> list[Emit]:
        if creds is None or mac in self.vms:
            return []  # no secret: MAB is the switch's business; already known: level, not edge
        self.vms[mac] = Vm(mac, creds, "connecting", now)
        return [Emit(mac, PAE_GROUP, Eapol(EapolType.START))]

    def vm_down(self, mac: str) -> list[Emit]:
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
            self.vms[dst] = replace(vm, state="authorized", since=now)
            return []
        if req.code is eap.EapCode.FAILURE:
            self.vms[dst] = replace(vm, state="held", since=now)
            return []
        if req.code is not eap.EapCode.REQUEST:
            return []
        if req.type == eap.TYPE_IDENTITY:
            ans = eap.identity_response(req.identifier, vm.creds.identity)
        elif req.type == eap.TYPE_MD5:
            challenge, _ = eap.parse_md5(req)
            ans = eap.md5_response(req.identifier, vm.creds.password.encode(), challenge)
        else:
            ans = eap.nak(req.identifier, eap.TYPE_MD5)
        if vm.state != "authorized":
            self.vms[dst] = replace(vm, state="authenticating", since=now)
        return [Emit(dst, src, of_eap(ans))]  # to the switch port that asked, from the VM

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
