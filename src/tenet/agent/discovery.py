"""Effects of NVO3 admission: the packet socket, RADIUS calls, endpoint reports.

One AF_PACKET socket sees discovery and session frames on every VM port (a classic-BPF filter
keeps everything else in the kernel; with several shards, only those of the TES MACs this
shard owns, see shards.py); one UDP socket serves TESs behind an L3 hop (shard 0); one more
carries every RADIUS exchange in flight (aaa/radius.RadiusMux). One thread, one select: frames
and RADIUS answers feed the pure state machine in admission.py; Attach/Detach become endpoint
keys in the store, from which the controller recomputes every host's tables — the agent then
builds the VN instance like any other.
"""
from __future__ import annotations

import errno
import logging
import queue
import select
import socket
import threading
import time
from dataclasses import asdict, replace

from tenet.aaa import dynauth
from tenet.aaa.failover import ServerState
from tenet.aaa.radius import (
    CARRIER_EAPOL, CARRIER_NVO3_L2, CARRIER_NVO3_UDP, RadiusMux, RadiusReply, RadiusTimeout, calling_station_id, framed_mtu,
)
from tenet.agent import authenticator as auth
from tenet.agent.accounting import dot1x_cause, nvo3_cause, of_authorization, of_session
from tenet.agent.accountant import Accountant
from tenet.agent.eap_relay import Noted, RelayEvent
from tenet.agent.kernel.linkdump import link_changes, link_events
from tenet.agent.metrics import AdmissionMetrics
from tenet.agent.notice import Admitted, Notifier, Reported, Withdrawn
from tenet.agent.shards import Command, Peers
from tenet.agent.admission import (
    UDP, Action, AskRadius, Attach, Detach, Nve, RadiusAnswer, Send, Session, udp_address, udp_channel,
)
from tenet.compute.routing import DELIVER
from tenet.compute.tables import HostTables, Servable
from tenet.store import keys
from tenet.store.base import Delete, Put, Store, in_chunks
from tenet.trace import trace
from tenet.store.records import EndpointKind, EndpointReport, RecordError, ReportedTunnel
from tenet.ethernet import hwaddr, mtu, packet_socket, shard_of
from tenet.wire import arp, eap, eapol
from tenet.wire.discovery import (
    ACCESS_TUNNEL_PORT, SERVER_PORT, DecodeError, MsgType, NveType, ReasonCode, TlvType, decode, encode, frame, unframe,
)

log = logging.getLogger("tenet.discovery")

PORT_PREFIX = "tp"
SWITCH_PORT_PREFIX = "ts"
TICK = 0.05  # how often timers (hellos, RADIUS retries, re-authentication) are looked at
BATCH = 64  # frames read per wake-up before the other sockets get their turn
LINGER = 0.002  # an endpoint report waits this long for others to share its store commit …
LINGER_BUSY = 0.01  # … or this long when the last commit carried several: a storm, where every
# commit wakes every store watcher on every host, and 8 ms more per report cost little
COUNT_SESSIONS = 1.0  # seconds between counts of the active sessions (the gauge)
DOT1X, NVO3 = "dot1x", "nvo3"  # the two relays: RADIUS tags and the metrics' `kind` label
UNDER_WAY = (auth.PaeState.CONNECTING, auth.PaeState.AUTHENTICATING)  # an 802.1X exchange, neither verdict yet
NVE_TYPES = {"hypervisor": NveType.HYPERVISOR, "access-switch": NveType.ACCESS_SWITCH, "router": NveType.ROUTER}


def _mac(b: bytes) -> str:
    return b.hex(":")


class Discovery:
    """Runs admission for one host (or one shard of it): one thread, one select over the packet
    socket, the L3 transport's UDP socket and the RADIUS socket."""

    def __init__(self, store: Store, host: str, radius: RadiusMux | None,
                 udp_port: int = SERVER_PORT, tunnel_port: int = ACCESS_TUNNEL_PORT,
                 sock: socket.socket | None = None, shard: int = 0, shards: int = 1,
                 metrics: AdmissionMetrics | None = None, accountant: Accountant | None = None) -> None:
        self.store = store
        self.metrics = metrics or AdmissionMetrics()
        self.accountant = accountant  # RADIUS accounting: told of every session opened and closed, never waited for
        self.asked: dict[object, float] = {}  # RADIUS tag -> when its request was submitted
        self.methods: dict[object, str] = {}  # exchange (a RADIUS tag less its round) -> the EAP method it speaks
        self.counted = float("-inf")  # when the sessions were last counted
        self.carried: dict[tuple, int] = {}  # the RADIUS client's counts as last carried into the metrics
        self.mtus: dict[str, int] = {}  # port -> Framed-MTU of the EAP relayed over it
        self.uplink = ""
        self.host = host
        self.radius = radius  # None: no AAA, so no VN is offered
        self.shard, self.shards = shard, shards
        self.nve = Nve(host, NveType.HYPERVISOR, 0, "0.0.0.0", {})
        self.sock = sock or packet_socket(arp=True, eapol=True)
        self.links = link_events()  # a TES's port leaving ends its sessions at once (port_gone)
        self.auth = auth.Authenticator()  # on an access switch's ports (ts…): 802.1X, many MACs per port
        self.arp_ports: dict[str, str] = {}  # TES port on an IP-based VN -> the VN's anycast gateway MAC
        # the per-NVE singletons are shard 0's: the L3 transport and RFC 5176 (from our RADIUS)
        self.udp = _udp_socket(udp_port) if udp_port and shard == 0 else None
        self.dynauth = _udp_socket(dynauth.PORT) if radius is not None and shard == 0 else None
        self.peers = Peers(host, shards) if shard == 0 else None
        self.nve.tunnel_port = tunnel_port
        self.stopping = threading.Event()
        self.reports: queue.SimpleQueue = queue.SimpleQueue()  # C-implemented: cheap on the hot path
        self.fast = Notifier(host)  # the agent forwards for what we admit before the controller answers
        threading.Thread(target=self._write_reports, name="reports", daemon=True).start()
        if self.dynauth is not None:
            self.dynauth.settimeout(0.5)
            threading.Thread(target=self._serve_dynauth, name="dynauth", daemon=True).start()
        self.lock = threading.Lock()
        self.ticked = float("-inf")
        self._restore()

    # -- configuration from the tables (level: replaced wholesale on every pass) ---------
    def configure(self, tables: HostTables) -> None:
        with self.lock:
            self.nve.nve_type = NVE_TYPES.get(tables.role, NveType.HYPERVISOR)
            self.nve.capability = tables.capability
            self.nve.nve_ip = tables.underlay_ip
            if self.accountant is not None:
                self.accountant.nas_ip = tables.underlay_ip  # NAS-IP-Address
            self.nve.port_macs = {}  # re-read lazily: a VM port may have been recreated
            self.mtus = {}  # likewise
            self.arp_ports = {r.port: t.gateway.split()[1] for t in tables.vns if t.forwarding == "ip" and t.gateway
                              for r in t.routes if r.function == DELIVER and r.port}
            self.nve.uplink_mac = hwaddr(tables.uplink) if self.udp else ""
            self.uplink = tables.uplink
            self.auth.mab = tables.mab

    def serve(self, vns: tuple[Servable, ...]) -> None:
        """The VNs it may offer (none without RADIUS: it could not authenticate a TES)."""
        with self.lock:
            self.nve.serves = vns if self.radius else ()

    def _port_mac(self, port: str) -> str:
        """The NVE's MAC on a VM port (the host side of the veth), cached until reconfigured."""
        mac = self.nve.port_macs.get(port)
        if mac is None:
            mac = hwaddr(port)
            if mac:
                self.nve.port_macs[port] = mac
        return mac

    def _framed_mtu(self, port: str) -> int:
        """Framed-MTU for EAP relayed over `port` (RFC 3580 §3.20), so that the server's EAP-TLS
        fragments fit one frame: a switch port carries EAPOL, a VM port NVO3 frames, the L3
        transport NVO3 in UDP over the uplink. Cached until reconfigured (an ioctl)."""
        got = self.mtus.get(port)
        if got is None:
            if port.startswith(UDP):
                link, overhead = self.uplink, CARRIER_NVO3_UDP
            else:
                link, overhead = port, CARRIER_EAPOL if port.startswith(SWITCH_PORT_PREFIX) else CARRIER_NVO3_L2
            got = framed_mtu((mtu(link) if link else None) or 1500, overhead)
            self.mtus[port] = got
        return got

    def _owns(self, record: EndpointReport) -> bool:
        """Whose session a recorded endpoint is after a restart: the L3 transport's are shard
        0's; an L2 TES's belongs to the shard the kernel hands its frames to."""
        if record.channel.startswith(UDP):
            return self.shard == 0
        return shard_of(record.mac, self.shards) == self.shard

    def _restore(self) -> None:
        now = time.monotonic()
        for kv in self.store.range(f"{keys.endpoints_prefix()}{self.host}/"):
            try:
                r = EndpointReport.from_json(kv.value)
            except RecordError as e:
                log.error("%s not restored: %s", kv.key, e)
                continue
            if not self._owns(r):
                continue
            if r.kind is EndpointKind.DOT1X:  # authorized on a switch port: nobody re-authenticates
                self.auth.restore(auth.Supplicant(r.port, r.mac, "authorized", now, identity=r.identity,
                                                  provisioning=r.provisioning))
                if self.accountant is not None and r.provisioning is not None:
                    self.accountant.restored(of_authorization(r.port, r.mac, r.identity or auth.mab_name(r.mac),
                                                              r.provisioning))
                continue
            s = Session(r.session, r.channel or r.port, r.mac, r.vn, r.vnid, "attached", now, identity=r.identity,
                        provisioning=r.provisioning, tes_ip=r.ip, tunnel_vni=r.tunnel.vni if r.tunnel else 0)
            self.nve.restore(now, s)
            if self.accountant is not None:
                self.accountant.restored(of_session(s))
        if self.accountant is not None:
            self.accountant.restore_done()  # accounting sessions found in the kernel and not restored: closed

    # -- the loop ----------------------------------------------------------------------
    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self._pass()
            except Exception:  # a bug in one frame's handling must not end admission on this host
                log.exception("admission pass failed")

    def _pass(self) -> None:
        inputs = [s for s in (self.sock, self.udp, self.radius, self.links) if s is not None]
        ready, _, _ = select.select(inputs, [], [], TICK)
        now = time.monotonic()
        if self.links in ready:
            self._links()
        if self.sock in ready:
            self._receive(now)
        if self.udp is not None and self.udp in ready:
            self._receive_udp(now)
        if self.radius is not None and self.radius in ready:
            self._answers(now, self.radius.on_readable(now))
        if now - self.ticked < TICK:
            return  # timers count in seconds: under load, don't walk every session per frame
        self.ticked = now
        if self.radius is not None:
            self._answers(now, self.radius.tick(now))
        with self.lock:
            actions = self.nve.tick(now)
            dot1x = self.auth.tick(now)
        self._do(actions)
        self._do_8021x(now, dot1x)
        if now - self.counted >= COUNT_SESSIONS:
            self._count_sessions(now)

    def _count_sessions(self, now: float) -> None:
        """The sessions gauge, level-triggered (restored sessions count too); what was kept
        for exchanges that ended without a verdict (a TES that gave up) goes."""
        self.counted = now
        with self.lock:
            live = {(NVO3, s.id) for s in self.nve.sessions.values()} | {(DOT1X, k) for k in self.auth.sessions}
            attached = sum(1 for s in self.nve.sessions.values() if s.state in ("attached", "reauthenticating"))
            authorized = sum(1 for s in self.auth.sessions.values() if s.state == "authorized")
            exchanges = sum(1 for s in self.auth.sessions.values() if s.state in UNDER_WAY)
        self.metrics.sessions.labels("nvo3").set(attached)
        self.metrics.sessions.labels("dot1x").set(authorized)
        self.metrics.exchanges.set(exchanges)
        self._count_radius()
        if self.accountant is not None:
            with self.lock:
                open_ = frozenset([("nvo3", s.id) for s in self.nve.sessions.values()
                                   if s.state in ("attached", "reauthenticating")]
                                  + [("dot1x", *k) for k, s in self.auth.sessions.items() if s.state == "authorized"])
            self.accountant.live(open_)  # level: accounting closes what admission no longer has
        for ident in [i for i in self.methods if i not in live]:
            del self.methods[ident]
        for tag in [t for t, at in self.asked.items() if now - at > 60.0]:
            del self.asked[tag]

    def _count_radius(self) -> None:
        """What the RADIUS client counted itself (replies dropped, servers declared dead,
        exchanges moved on), carried into the metrics; each server's state as a gauge."""
        if self.radius is None:
            return
        m, mux = self.metrics, self.radius
        counts = [(m.radius_dropped.labels(server, reason.value), ("dropped", server, reason), n)
                  for (server, reason), n in mux.dropped.items()]
        counts += [(m.radius_deaths.labels(server), ("dead", server), n) for server, n in mux.deaths.items()]
        counts += [(m.radius_failovers.labels(server), ("moved", server), n) for server, n in mux.failovers.items()]
        for counter, key, n in counts:
            if n > self.carried.get(key, 0):
                counter.inc(n - self.carried.get(key, 0))
                self.carried[key] = n
        for server, state in mux.failover.states().items():
            m.radius_up.labels(str(server)).set(1 if state is ServerState.ALIVE else 0)

    def _links(self) -> None:
        """Ports that left this namespace: their TESs' sessions end now (a migrated VM's)."""
        gone: list[str] = []
        while True:
            try:
                data = self.links.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError as e:  # overrun: a port that left is caught by the TES's hellos instead
                log.warning("link events overran: %s", e)
                break
            gone += [name for name, present in link_changes(data) if not present and name.startswith(PORT_PREFIX)]
        for port in dict.fromkeys(gone):
            if _present(port):  # gone and back already (or a message we misread): its TES stays
                continue
            with self.lock:
                actions = self.nve.port_gone(port)
            self._do(actions)

    def _answers(self, now: float, answers: list) -> None:
        for tag, reply in answers:
            asked = self.asked.pop(tag, None)
            if isinstance(reply, RadiusReply) and asked is not None:
                self.metrics.radius.observe(now - asked)
            elif isinstance(reply, RadiusTimeout):
                self.metrics.radius_timeouts.inc()
            if not (isinstance(tag, tuple) and len(tag) == 3 and tag[0] in (DOT1X, NVO3)):
                continue  # not an admission's exchange
            kind, key, rnd = tag  # (DOT1X, (port, mac) | NVO3, session id; the Access-Request's tag)
            ident = (kind, key)
            if kind == DOT1X:  # the switch's authenticator
                with self.lock:
                    s = self.auth.sessions.get(key)
                    awaited = s is not None and s.exchange.answers(rnd)
                    dot1x = self.auth.on_radius(now, key, _answer(reply), rnd)
                    after = self.auth.sessions.get(key)
                restarted = any(isinstance(a, Noted) and a.event is RelayEvent.RESTART for a in dot1x)
                if awaited and not restarted and not (isinstance(reply, RadiusReply) and reply.code == "challenge"):
                    result = "error" if not isinstance(reply, RadiusReply) else \
                        "success" if after is not None and after.state == "authorized" else "failure"
                    method = "mab" if s.method == "mab" else self.methods.pop(ident, "none")  # type: ignore[union-attr]
                    self.metrics.dot1x.labels(result, method).inc()
                self._do_8021x(now, dot1x)
                continue
            with self.lock:
                actions = self.nve.on_radius(now, key, _answer(reply), rnd)
            for a in actions:  # a verdict was sent: count it with the method the TES spoke
                if isinstance(a, Send) and a.msg.type is MsgType.AUTH_RESULT:
                    result = "error" if not isinstance(reply, RadiusReply) else \
                        "success" if a.msg.get(TlvType.AUTH_STATUS) == 0 else "failure"
                    self.metrics.admissions.labels(result, self.methods.pop(ident, "none")).inc()
            self._do(actions)

    def command(self, cmd: Command) -> bool:
        """Shard 0: a per-NVE request about a MAC, to this shard's sessions and every other's."""
        here = self.apply(cmd)
        elsewhere = self.peers.ask(cmd) if self.peers is not None else False
        return here or elsewhere

    def apply(self, cmd: Command) -> bool:
        """End or re-provision this shard's sessions of a MAC; whether it had any."""
        now = time.monotonic()
        dot1x: list = []
        nvo3: list[Action] = []
        with self.lock:
            if cmd.kind == "revoke":
                nvo3 = self.nve.revoke(cmd.mac, cmd.why, cmd.vn)
            elif cmd.kind == "disconnect":
                dot1x = self.auth.disconnect(cmd.mac)
                nvo3 = self.nve.revoke(cmd.mac, cmd.why)
            elif cmd.provisioning is not None:  # coa: the attributes the request carries change
                changed = {k: v for k, v in asdict(cmd.provisioning).items() if v is not None}
                dot1x = [a for s in list(self.auth.sessions.values()) if s.mac == cmd.mac and s.provisioning
                         for a in self.auth.change(cmd.mac, replace(s.provisioning, **changed))]
                nvo3 = self.nve.change(cmd.mac, changed)
        self._do_8021x(now, dot1x)
        self._do(nvo3)
        return bool(dot1x or nvo3)

    def stop(self) -> None:
        self.stopping.set()

    def _receive(self, now: float) -> None:
        """Every frame queued on the packet socket (up to a batch), then back to select."""
        for _ in range(BATCH):
            try:
                data, addr = self.sock.recvfrom(65535, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return
            self._frame(now, data, addr[0])  # incoming only: the socket filter drops what we send

    def _frame(self, now: float, data: bytes, port: str) -> None:
        if port.startswith(SWITCH_PORT_PREFIX) and data[12:14] == b"\x88\x8e":
            self._receive_eapol(now, port, data)
            return
        if port.startswith(SWITCH_PORT_PREFIX) and data[12:14] == b"\x08\x06":  # a MAC that speaks no EAPOL
            with self.lock:  # ARPs before anything else: MAB, if this switch allows it
                actions8 = self.auth.on_data(now, port, _mac(data[6:12]))
            self._do_8021x(now, actions8)
            return
        if not port.startswith(PORT_PREFIX):
            return
        if data[12:14] == b"\x08\x06":
            self._answer_arp(port, data)
            return
        try:
            _, src, _, msg = unframe(data)
        except DecodeError as e:
            log.warning("malformed frame on %s: %s", port, e)
            return
        with self.lock:
            self._port_mac(port)
            actions = self.nve.on_frame(now, port, src, msg)
        self._do(actions)

    # -- 802.1X: the access switch's authenticator (seed 000) -----------------------------
    def _receive_eapol(self, now: float, port: str, data: bytes) -> None:
        try:
            _, src, f = eapol.unframe(data)
        except DecodeError as e:
            log.warning("malformed EAPOL on %s: %s", port, e)
            return
        with self.lock:
            actions = self.auth.on_eapol(now, port, src, f)
        self._do_8021x(now, actions)

    def _do_8021x(self, now: float, actions: list) -> None:
        for a in actions:
            if isinstance(a, auth.SendEapol):
                mac = self._port_mac(a.port)
                if mac:
                    try:
                        self.sock.sendto(eapol.frame(a.dst, mac, a.frame), (a.port, 0))
                    except OSError as e:
                        log.warning("EAPOL on %s failed: %s", a.port, _send_error(e, len(a.frame.body)))
            elif isinstance(a, Noted):
                self._noted(DOT1X, a)
            elif isinstance(a, auth.AskRadius) and self.radius is not None:
                tag = (DOT1X, a.key, a.tag)
                self._asking(now, tag, a.eap)
                self.radius.submit(now, tag, a.user_name, a.eap, a.state,
                                   calling_station_id(a.key[1]), a.key[0],
                                   password=a.user_name if a.mab else None,  # MAB: User-Password = the MAC
                                   mtu=self._framed_mtu(a.key[0]))
            elif isinstance(a, auth.Authorize):
                self._authorize(a)
            elif isinstance(a, auth.Deauthorize):
                log.info("802.1X: %s on %s deauthorized: %s", a.mac, a.port, a.reason)
                if a.reason == "logoff":
                    self.metrics.logoffs.inc()
                if self.accountant is not None:
                    self.accountant.closed(("dot1x", a.port, a.mac), dot1x_cause(a.reason))
                for s in self.nve.serves:
                    self.fast.send(Withdrawn(s.vn, a.mac))
                    self.reports.put((Delete(keys.endpoint(self.host, s.vn, a.mac)), "", None))

    def _serve_dynauth(self) -> None:
        """Its own thread: a request may wait (≤ 1 s) for the other shards' answers."""
        while not self.stopping.is_set():
            try:
                data, (ip, port) = self.dynauth.recvfrom(4096)  # type: ignore[union-attr]
            except (TimeoutError, socket.timeout):
                continue
            except OSError as e:
                log.warning("dynamic authorization socket: %s", e)
                continue
            try:
                self._dynauth(data, ip, port)
            except Exception:  # one bad request must not end dynamic authorization
                log.exception("dynamic authorization from %s failed", ip)

    def _dynauth(self, data: bytes, ip: str, port: int) -> None:
        """Disconnect: end the MAC's 802.1X authorization or NVO3 session. CoA: apply the
        changed attributes (e.g. a new rate) to the MAC's authorization, live."""
        mux = self.radius
        assert mux is not None
        client = mux.client
        if not mux.accepts(ip):  # any of our servers may: the one that authorized the session may be a backup
            log.warning("dynamic authorization from %s ignored: only %s may", ip,
                        ", ".join(sorted({s.ip for s in mux.servers})))
            self.metrics.dynauth.labels("unknown", "refused").inc()
            return
        try:
            req = dynauth.parse(data, client.secret, client.dict)
        except dynauth.DynAuthError as e:
            log.warning("dynamic authorization from %s dropped: %s", ip, e)
            self.metrics.dynauth.labels("unknown", "refused").inc()
            return
        done = self.command(Command(req.kind, req.mac, "RADIUS Disconnect-Request", req.provisioning))
        self.metrics.dynauth.labels(req.kind, "ack" if done else "nak").inc()
        log.info("RADIUS %s for %s: %s", req.kind, req.mac, "done" if done else "no such session")
        self.dynauth.sendto(dynauth.answer(req, done), (ip, port))  # type: ignore[union-attr]

    def _authorize(self, a: auth.Authorize) -> None:
        """RFC 3580: the VN by name, or by number (a VLAN id or a VN-ID) among those we serve."""
        p = a.provisioning
        vn = next((s for s in self.nve.serves if (p.vn and s.vn == p.vn) or (p.vnid and s.vnid == p.vnid)), None)
        if vn is None:
            log.error("802.1X: %s on %s accepted into %s, which this switch does not serve", a.mac, a.port, p.vn or p.vnid)
            return
        log.info("802.1X: %s on %s authorized into %s", a.mac, a.port, vn.vn)
        identity = self.auth.sessions.get((a.port, a.mac), auth.Supplicant(a.port, a.mac, "", 0)).identity
        report = EndpointReport(
            vn=vn.vn, vnid=vn.vnid, mac=a.mac, port=a.port, host=self.host, session=0,
            identity=identity, ip=p.ip or "", kind=EndpointKind.DOT1X, provisioning=p)
        if self.accountant is not None:
            self.accountant.opened(of_authorization(a.port, a.mac, identity or auth.mab_name(a.mac), p))
        trace("admitted", a.mac)
        self.fast.send(Admitted(report))
        self.reports.put((Put(keys.endpoint(self.host, vn.vn, a.mac), report.to_json()), "", (vn.vn, a.mac)))

    def _answer_arp(self, port: str, data: bytes) -> None:
        """Proxy ARP on IP-based VNs: every address a TES asks for is the anycast gateway."""
        gw = self.arp_ports.get(port)
        if gw is None:
            return  # a MAC-based VN's ARP is the tenants' own business (bridged, translated, flooded)
        try:
            reply = arp.proxy_reply(arp.decode(data[14:]), gw)
        except DecodeError:
            return
        if reply is not None:
            try:
                self.sock.sendto(arp.frame(reply.tha, gw, reply), (port, 0))
            except OSError as e:
                log.warning("ARP reply on %s failed: %s", port, e)

    def _receive_udp(self, now: float) -> None:
        """L3 transport: the same messages in UDP; the TES names its MAC in a TLV (no L2 header)."""
        data, (ip, port) = self.udp.recvfrom(65535)  # type: ignore[union-attr]
        try:
            msg = decode(data)
        except DecodeError as e:
            log.warning("malformed datagram from %s:%d: %s", ip, port, e)
            return
        src = str(msg.get(TlvType.TES_MAC) or "")
        if msg.type in (MsgType.DISCOVER, MsgType.REQUEST) and not src:
            log.warning("%s from %s:%d without TES_MAC: ignored", msg.type.name, ip, port)
            return
        with self.lock:
            actions = self.nve.on_frame(now, udp_channel(ip, port), src, msg)
        self._do(actions)

    def _do(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, Send) and a.port.startswith(UDP):
                try:
                    self.udp.sendto(encode(a.msg), udp_address(a.port))  # type: ignore[union-attr]
                except OSError as e:
                    log.warning("send to %s failed: %s", a.port, e)
            elif isinstance(a, Send):
                src = self._port_mac(a.port)
                if src:
                    try:
                        self.sock.sendto(frame(a.dst, src, a.msg), (a.port, 0))
                    except OSError as e:
                        log.warning("send on %s failed: %s", a.port, _send_error(e, len(encode(a.msg))))
            elif isinstance(a, Noted):
                self._noted(NVO3, a)
            elif isinstance(a, AskRadius) and self.radius is not None:
                now = time.monotonic()
                tag = (NVO3, a.session, a.tag)
                self._asking(now, tag, a.eap)
                self.radius.submit(now, tag, a.identity, a.eap, a.state,
                                   calling_station_id(a.tes_mac), a.port, mtu=self._framed_mtu(a.port))
            elif isinstance(a, Attach):
                s = a.session
                if self.accountant is not None:
                    self.accountant.opened(of_session(s))  # Start (a CoA's Attach of an open session: none)
                report = self._report(s)
                trace("admitted", s.tes_mac)
                self.fast.send(Admitted(report))
                self.reports.put((Put(keys.endpoint(self.host, s.vn, s.tes_mac), report.to_json()),
                                  f"attach {s.tes_mac} to {s.vn} (session {s.id:08x})", (s.vn, s.tes_mac)))
            elif isinstance(a, Detach):
                s = a.session
                self.metrics.detaches.labels(a.reason.name.lower()).inc()
                if self.accountant is not None:
                    self.accountant.closed(("nvo3", s.id), nvo3_cause(a.reason))
                if a.reason is ReasonCode.KEEPALIVE_TIMEOUT:
                    self.metrics.hellos_missed.inc()
                self.fast.send(Withdrawn(s.vn, s.tes_mac))
                self.reports.put((Delete(keys.endpoint(self.host, s.vn, s.tes_mac)),
                                  f"detach {s.tes_mac} from {s.vn}: {a.reason.name}", None))

    def _asking(self, now: float, tag: tuple, payload: bytes | None) -> None:
        """An exchange is relayed: when (the round trip's start), and the method it speaks."""
        self.asked[tag] = now
        method = eap.method_of(payload)
        if method is not None:
            self.methods[tag[:2]] = method

    def _noted(self, kind: str, n: Noted) -> None:
        """An event of an EAP relay (eap_relay.py): counted, and logged when it ends or
        restarts an attempt."""
        m = self.metrics
        if n.event is RelayEvent.RETRANSMIT:
            m.eap_retransmissions.labels(kind).inc()
        elif n.event is RelayEvent.SUPPLICANT_TIMEOUT:
            m.eap_timeouts.labels(kind, "supplicant").inc()
        elif n.event is RelayEvent.SERVER_TIMEOUT:
            m.eap_timeouts.labels(kind, "server").inc()
        elif n.event is RelayEvent.RESTART:
            m.eap_restarts.labels(kind).inc()
        else:
            m.eap_dropped.labels(kind, n.event.value).inc()
        if n.event in (RelayEvent.SUPPLICANT_TIMEOUT, RelayEvent.SERVER_TIMEOUT, RelayEvent.RESTART):
            log.info("%s: EAP for %s: %s%s", kind, n.who, n.event.value.replace("_", " "), f" ({n.detail})" if n.detail else "")

    def _write_reports(self) -> None:
        """Endpoint changes leave in batches: one store transaction per burst, not per TES, and
        one log line naming every attach and detach in it (a log record per TES cost a tenth
        of admission's CPU under churn). A failed commit is retried, never dropped."""
        batch: list[tuple] = []
        linger = LINGER
        while not self.stopping.is_set():
            if not batch:
                try:
                    batch.append(self.reports.get(timeout=0.2))
                except queue.Empty:
                    continue
                time.sleep(linger)  # a burst's next reports are a moment away: one commit for them all
            while True:
                try:
                    batch.append(self.reports.get_nowait())
                except queue.Empty:
                    break
            try:
                rev = in_chunks(self.store, [op for op, _, _ in batch])  # a retry rewrites chunks already in: same values
            except Exception as e:  # the store is away: keep the batch, in order, and try again
                log.error("endpoint reports not written (%d kept for a retry): %s", len(batch), e)
                self.stopping.wait(0.5)
                continue
            admitted = tuple(a for _, _, a in batch if a)
            if admitted:  # the agent's provisional rows learn by when the controller can have seen them
                self.fast.send(Reported(rev, admitted))
            notes = [note for _, note, _ in batch if note]
            if notes:
                log.info("%s", "; ".join(notes))
            linger = LINGER_BUSY if len(batch) > 2 else LINGER
            batch = []

    def _report(self, s: Session) -> EndpointReport:
        tunnel = ReportedTunnel(udp_address(s.port)[0], s.tunnel_vni, self.nve.tunnel_port) if s.tunnel_vni else None
        return EndpointReport(vn=s.vn, vnid=s.vnid, mac=s.tes_mac, port=s.access_port, host=self.host,
                              session=s.id, identity=s.identity, ip=s.tes_ip, provisioning=s.provisioning,
                              channel=s.port if s.tunnel_vni else "", tunnel=tunnel)


def _present(port: str) -> bool:
    try:
        socket.if_nametoindex(port)
        return True
    except OSError:
        return False


def _send_error(e: OSError, size: int) -> str:
    """Why a frame did not leave; a frame over the port's MTU names the likely cause."""
    if e.errno == errno.EMSGSIZE:
        return (f"{e} (an EAP packet of {size} bytes does not fit the port's MTU: "
                "the RADIUS server should fragment below the Framed-MTU it is sent)")
    return str(e)


def _answer(reply: RadiusReply | Exception) -> RadiusAnswer:
    """A dead or lying RADIUS server is a rejection with a reason, never a crash."""
    if isinstance(reply, RadiusReply):
        return RadiusAnswer(reply.code, reply.eap_message, reply.state, reply.provisioning)
    log.error("RADIUS: %s", reply)
    return RadiusAnswer("error", error=f"RADIUS unavailable: {reply}")


def _udp_socket(port: int) -> socket.socket:
    """DHCP-style server socket: unicast and broadcast DISCOVERs from TESs behind an L3 hop."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind(("0.0.0.0", port))
    return s
