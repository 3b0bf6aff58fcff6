"""`tenet-tes`: run inside a VM or server; attach it to its VN by NVO3 discovery."""
from __future__ import annotations

import argparse
import logging
import sys

from tenet.tes.client import AuthFailed, Config, Tes
from tenet.tes.link import PacketLink, UdpLink
from tenet.tes.methods import DEFAULT_FRAGMENT, CredentialsError
from tenet.tes.peer import NAMES, check
from tenet.tes.nudge import Nudge
from tenet.tes.selection import CAPABILITY_MAX, POLICIES
from tenet.wire.discovery import CLIENT_PORT, SERVER_PORT
from tenet.stopping import stop_on_signals

log = logging.getLogger("tenet.tes")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tenet-tes", description="Attach this end system to its virtual network")
    p.add_argument("--iface", default="eth0", help="the NIC (L2) or the uplink toward the NVEs (udp)")
    p.add_argument("--transport", choices=("l2", "udp"), default="l2",
                   help="l2: EtherTypes 0x88B5/0x88B6 on --iface; udp: behind an L3 hop (docs/protocol.md)")
    p.add_argument("--nve", action="append", default=[],
                   help="udp: an NVE address to send DISCOVER to (repeatable); none: broadcast on --iface")
    p.add_argument("--mac", help="udp: the TES's MAC inside the VN (default: --iface's)")
    p.add_argument("--ip", default="", help="udp: the TES's address inside the VN, e.g. 10.1.0.30/24")
    p.add_argument("--server-port", type=int, default=SERVER_PORT)
    p.add_argument("--client-port", type=int, default=CLIENT_PORT)
    p.add_argument("--vn", help="VN name")
    p.add_argument("--vnid", type=int, default=0)
    p.add_argument("--identity", required=True, help="the EAP identity (EAP-TLS: the client certificate's CN)")
    p.add_argument("--password", default="", help="md5, peap, ttls: the password")
    p.add_argument("--method", choices=sorted(NAMES), default="md5",
                   help="the EAP method: md5 (no server proof), tls (certificates both ways), "
                        "peap (MSCHAPv2 in TLS), ttls (PAP in TLS)")
    p.add_argument("--ca", default="", help="tls, peap, ttls: the CA the RADIUS server's certificate must come from")
    p.add_argument("--cert", default="", help="tls: our certificate (PEM)")
    p.add_argument("--key", default="", help="tls: our private key (PEM, unencrypted)")
    p.add_argument("--server-name", default="", help="tls, peap, ttls: the name the server's certificate must carry")
    p.add_argument("--fragment-size", type=int, default=DEFAULT_FRAGMENT,
                   help="tls, peap, ttls: TLS bytes per EAP packet (keep the frame within the path's MTU)")
    p.add_argument("--policy", choices=sorted(POLICIES), default="default")
    p.add_argument("--offer-window", type=float, default=0.02,
                   help="seconds to collect offers, unless no better one can come (docs/protocol.md)")
    p.add_argument("--capability-ceiling", type=int, default=CAPABILITY_MAX,
                   help="an access switch offering this capability or more is taken at once (default policy)")
    a = p.parse_args(argv)
    if not a.vn and not a.vnid:
        p.error("give --vn and/or --vnid")
    if not 0 <= a.capability_ceiling <= CAPABILITY_MAX:
        p.error(f"--capability-ceiling {a.capability_ceiling} is outside 0..{CAPABILITY_MAX} (NVE_CAPABILITY is a u32)")
    if a.method != "tls" and not a.password:
        p.error(f"--method {a.method} needs --password")
    if not 64 <= a.fragment_size <= 1400:
        p.error(f"--fragment-size {a.fragment_size} is outside 64..1400 (an EAP packet must fit one frame)")
    cfg = Config(a.vn, a.vnid, a.identity, a.password, offer_window=a.offer_window, capability_ceiling=a.capability_ceiling,
                 policy=a.policy, methods=(NAMES[a.method],), ca=a.ca, cert=a.cert, key=a.key,
                 server_name=a.server_name, fragment_size=a.fragment_size)
    try:
        check(cfg.credentials, cfg.methods)  # a missing certificate is said now, not at the first attachment
    except CredentialsError as e:
        p.error(f"--method {a.method}: {e} (--ca, --cert, --key)")
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stopping = stop_on_signals()
    nudge = Nudge()  # SIGUSR1: the hypervisor moved us (live migration)
    if a.transport == "udp":
        mac = a.mac or open(f"/sys/class/net/{a.iface}/address").read().strip()
        link: PacketLink | UdpLink = UdpLink(a.iface, mac, a.ip, a.nve, a.server_port, a.client_port, wake=nudge)
    else:
        link = PacketLink(a.iface, wake=nudge)
    tes = Tes(link, cfg)
    while not stopping.is_set():
        try:
            if tes.attach(stopping.is_set) is None:
                break
        except AuthFailed as e:
            log.error("authentication failed: %s; retrying in %.0fs", e, tes.cfg.fail_backoff)
            stopping.wait(tes.cfg.fail_backoff)
            continue
        why = tes.keepalive(stopping.is_set, nudge.taken)
        log.info("session ended: %s", why)
    tes.terminate()
    link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
