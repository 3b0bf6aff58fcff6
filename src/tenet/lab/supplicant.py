"""A server's own 802.1X supplicant: the real wpa_supplicant (driver wired) on its NIC.

A server on an access switch's port authenticates itself, as a physical machine does: the lab
writes it a wpa_supplicant configuration (its method's credentials: the lab's client
certificate for EAP-TLS, a password inside a TLS tunnel for PEAP-MSCHAPv2 and TTLS-PAP, or a
password for EAP-MD5) and starts `wpa_supplicant -D wired` in its namespace. Rendering is
pure; the lab writes the file and starts the process (lab/lab.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tenet.lab.plan import SERVER_NIC as NIC
from tenet.model.tenancy import EapMethod, Server

ANONYMOUS = "anonymous"  # the outer identity of a tunnelled method: the user's stays inside
EAP_NAMES = {EapMethod.MD5: "MD5", EapMethod.TLS: "TLS", EapMethod.PEAP: "PEAP", EapMethod.TTLS: "TTLS"}
PHASE2 = {EapMethod.PEAP: "auth=MSCHAPV2", EapMethod.TTLS: "auth=PAP"}


@dataclass(frozen=True)
class Credentials:
    """PEM paths a certificate-based method needs: the CA that signed the RADIUS server's
    certificate (to verify it), and for EAP-TLS the client's own certificate and key."""

    ca_cert: str = ""
    client_cert: str = ""
    private_key: str = ""


@dataclass(frozen=True)
class SupplicantConfig:
    ctrl_dir: str  # wpa_cli -p <ctrl_dir>
    method: EapMethod
    identity: str
    password: str = ""
    anonymous_identity: str = ""  # PEAP/TTLS: what the authenticator (and RADIUS outside the tunnel) sees
    credentials: Credentials = Credentials()


def config_for(server: Server, ctrl_dir: str, credentials: Credentials) -> SupplicantConfig:
    nic = server.nic
    tunnelled = nic.method in PHASE2
    return SupplicantConfig(ctrl_dir, nic.method, nic.identity,
                            password=nic.password if nic.method is not EapMethod.TLS else "",
                            anonymous_identity=ANONYMOUS if tunnelled else "",
                            credentials=credentials if nic.method is not EapMethod.MD5 else Credentials())


def render(c: SupplicantConfig) -> str:
    """wpa_supplicant.conf for a wired port: EAPOL v2 (what 802.1X-2004 authenticators all
    take), no scanning, no dynamic WEP keys (eapol_flags=0: a wired port has none)."""
    net = [("key_mgmt", "IEEE8021X"), ("eap", EAP_NAMES[c.method]), ("identity", _string(c.identity))]
    if c.anonymous_identity:
        net.append(("anonymous_identity", _string(c.anonymous_identity)))
    if c.password:
        net.append(("password", _string(c.password)))
    if c.credentials.ca_cert:
        net.append(("ca_cert", _string(c.credentials.ca_cert)))
    if c.method is EapMethod.TLS:
        net += [("client_cert", _string(c.credentials.client_cert)), ("private_key", _string(c.credentials.private_key))]
    if c.method in PHASE2:
        net.append(("phase2", _string(PHASE2[c.method])))
    net.append(("eapol_flags", "0"))
    lines = [f"ctrl_interface={c.ctrl_dir}", "eapol_version=2", "ap_scan=0", "network={"]
    lines += [f"\t{k}={v}" for k, v in net] + ["}", ""]
    return "\n".join(lines)


def _string(s: str) -> str:
    """A quoted string, or wpa_supplicant's hex form when quoting cannot carry it (it knows
    no escapes): identities and passwords are the operator's, any bytes."""
    if s.isprintable() and '"' not in s and s.isascii():
        return f'"{s}"'
    return s.encode().hex()


def argv(conf: Path, nic: str = NIC) -> list[str]:
    """-t: timestamps in its log (the lab's log file for the process)."""
    return ["wpa_supplicant", "-t", "-D", "wired", "-i", nic, "-c", str(conf)]


def cli(ctrl_dir: str, *command: str, nic: str = NIC) -> list[str]:
    """wpa_cli against the supplicant's control socket, e.g. cli(d, "status")."""
    return ["wpa_cli", "-p", ctrl_dir, "-i", nic, *command]
