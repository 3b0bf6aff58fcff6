"""What an Access-Accept provisions, read per RFC 3580 (pure).

VN: Tunnel-Type = VLAN (13), Tunnel-Medium-Type = IEEE-802 (6), Tunnel-Private-Group-Id = a VN
name, or a decimal VN-ID. Rate limits, bits/s, one per direction: WISPr-Bandwidth-Max-Up
(vendor 14122, attribute 7: what the TES may send) and WISPr-Bandwidth-Max-Down (attribute 8:
what the NVE sends toward it) — widely deployed attributes rather than private ones. Session-Timeout triggers
re-authentication; Filter-Id is passed through; RFC 4675 User-Priority-Table gives the class
of service (DSCP CS<n> on the TES's IPv4 frames); Framed-IP-Address (with Framed-IP-Netmask,
else /32) is the TES's address in the VN, which the TES configures and the NVE reports.
For accounting (agent/accounting.py): Acct-Interim-Interval, and the Class attributes, which
every accounting record of the session echoes.
"""
from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Interface

VLAN = 13
IEEE_802 = 6


class ProvisioningError(ValueError):
    pass


@dataclass(frozen=True)
class Provisioning:
    vn: str | None = None
    vnid: int | None = None
    vlan: int | None = None
    rate_down_bps: int | None = None  # WISPr-Bandwidth-Max-Down: toward the TES
    cos: int | None = None
    session_timeout: int | None = None
    filter_id: str | None = None
    ip: str | None = None  # "10.60.0.40/24"
    rate_up_bps: int | None = None  # WISPr-Bandwidth-Max-Up: from the TES
    user_name: str | None = None  # the Accept's User-Name: who it is (RFC 2865 §5.1; a tunnelled method's inner user)
    acct_interim: int | None = None  # Acct-Interim-Interval (RFC 2869 §5.16): seconds between interim updates
    radius_class: str | None = None  # Class attributes, hex, comma-separated: echoed in accounting (RFC 2865 §5.25)

    @staticmethod
    def from_dict(d: Mapping[str, object]) -> "Provisioning":
        """From its JSON form (a stored endpoint report); a report written before rates had
        two directions names the down rate `rate_bps`."""
        d = dict(d)
        if "rate_bps" in d:
            d.setdefault("rate_down_bps", d.pop("rate_bps"))
        return Provisioning(**d)  # type: ignore[arg-type]


def attributes_of(pkt: Mapping) -> dict[str, list]:
    """A RADIUS packet's attributes by dictionary name (pyrad decodes each on access). A value
    that is not its dictionary type — a 2-byte integer, text that is not UTF-8 — is a
    ProvisioningError naming the attribute, not a traceback in the NVE's loop."""
    out: dict[str, list] = {}
    for k in pkt.keys():
        if isinstance(k, str):
            try:
                out[k] = pkt[k]
            except (ValueError, struct.error) as e:
                raise ProvisioningError(f"{k}: {e}") from None
    return out


def _first(attrs: Mapping[str, list], name: str):
    values = attrs.get(name) or []
    v = values[0] if values else None
    if isinstance(v, tuple):  # tagged attributes come as (tag, value)
        v = v[1]
    return v


def _int(v) -> int | None:
    if v is None:
        return None
    if isinstance(v, str):
        v = {"VLAN": VLAN, "IEEE-802": IEEE_802}.get(v, v)
    return int(v)


def from_attributes(attrs: Mapping[str, list]) -> Provisioning:
    group = _first(attrs, "Tunnel-Private-Group-Id")
    vn = vnid = vlan = None
    if group is not None:
        try:
            group = group.decode() if isinstance(group, bytes) else str(group)
        except UnicodeDecodeError:
            raise ProvisioningError(f"Tunnel-Private-Group-Id {group!r} is not UTF-8 text") from None
        if _int(_first(attrs, "Tunnel-Type")) != VLAN:
            raise ProvisioningError(f"Tunnel-Private-Group-Id {group!r} without Tunnel-Type = VLAN (13)")
        if _int(_first(attrs, "Tunnel-Medium-Type")) != IEEE_802:
            raise ProvisioningError(f"Tunnel-Private-Group-Id {group!r} without Tunnel-Medium-Type = IEEE-802 (6)")
        if group.isdigit():
            vnid = int(group)
            vlan = vnid if 1 <= vnid <= 4094 else None
        else:
            vn = group
    timeout = _int(_first(attrs, "Session-Timeout"))
    down = _int(_first(attrs, "WISPr-Bandwidth-Max-Down"))
    up = _int(_first(attrs, "WISPr-Bandwidth-Max-Up"))
    fid = _first(attrs, "Filter-Id")
    name = _first(attrs, "User-Name")
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    interim = _int(_first(attrs, "Acct-Interim-Interval"))
    classes = [bytes(c) if not isinstance(c, str) else c.encode() for c in attrs.get("Class") or []]
    return Provisioning(vn, vnid, vlan, down or None, _cos(attrs), timeout or None, str(fid) if fid else None,
                        _address(attrs), up or None, str(name) if name else None, acct_interim=interim or None,
                        radius_class=",".join(c.hex() for c in classes) or None)


def _cos(attrs: Mapping[str, list]) -> int | None:
    """RFC 4675 User-Priority-Table: 8 octets, the 802.1p priority for each incoming one. A VM
    sends untagged frames (priority 0), so the first octet is its class of service."""
    table = _first(attrs, "User-Priority-Table")
    if table is None:
        return None
    table = bytes(table) if not isinstance(table, str) else table.encode()
    if len(table) != 8 or table[0] > 7:
        raise ProvisioningError(f"User-Priority-Table {table.hex()} is not 8 priorities 0..7")
    return table[0]


def _address(attrs: Mapping[str, list]) -> str | None:
    ip, mask = _first(attrs, "Framed-IP-Address"), _first(attrs, "Framed-IP-Netmask")
    if ip is None:
        return None
    try:
        return str(IPv4Interface(f"{ip}/{mask or 32}"))
    except ValueError as e:
        raise ProvisioningError(f"Framed-IP-Address {ip!r} / Framed-IP-Netmask {mask!r}: {e}") from None

