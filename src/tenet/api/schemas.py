"""The API's request bodies: the document's entries, field for field (model/load.py KEYS).

They give OpenAPI its shapes and refuse unknown fields; what a value means (an address in its
VN's subnet, a free VN-ID, a host that exists) is the loader's to judge, as for a file, so the
types here are only as strict as the document's syntax.
"""
from __future__ import annotations

from enum import Enum
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

Rate = Union[str, int]  # "30mbit", or bits per second


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def doc(self) -> dict:
        """The document entry: fields left out stay out (the loader's defaults apply)."""
        return self.model_dump(mode="json", exclude_none=True, by_alias=True)


class Network(Body):
    vnid: int = Field(..., description="24-bit VN-ID, also the VXLAN VNI; unique")
    tenant: Optional[str] = Field(None, description="default: the caller's tenant (admin: 'default')")
    subnet: Optional[str] = None
    subnet6: Optional[str] = None
    bum: Optional[Literal["multicast", "replicate"]] = None
    group: Optional[str] = Field(None, description="the multicast group when bum is multicast")
    forwarding: Optional[Literal["mac", "ip"]] = None
    over: Optional[str] = Field(None, description="the VN this one is layered over")


class JoinKind(str, Enum):
    static = "static"
    discover = "discover"
    dot1x = "8021x"
    mab = "mab"


class EapMethodKind(str, Enum):
    md5 = "md5"
    tls = "tls"
    peap = "peap"
    ttls = "ttls"


class Nic(Body):
    network: str
    mac: Optional[str] = None
    ip: Optional[str] = Field(None, description="ADDRESS/PREFIX in the VN's subnet; default: the lowest free")
    ip6: Optional[list[str]] = None
    join: Optional[JoinKind] = None
    identity: Optional[str] = None
    password: Optional[str] = Field(None, description="write-only")
    nves: Optional[list[str]] = None
    gateway: Optional[str] = None
    allowed: Optional[list[str]] = Field(None, description="more addresses or prefixes it may send from (a VIP)")
    port_security: Optional[bool] = Field(None, description="false: its host checks nothing it sends")
    method: Optional[EapMethodKind] = Field(None, description="join discover/8021x: the EAP method (default md5)")


class Size(Body):
    cpu: Optional[Union[int, float]] = None
    memory: Optional[str] = None


class Vm(Body):
    host: str
    nics: list[Nic] = []
    state: Optional[Literal["running", "paused", "stopped"]] = None
    migrating_to: Optional[str] = None
    size: Optional[Size] = None


class User(Body):
    password: Optional[str] = Field(None, description="write-only; required for a new user, a PUT without it keeps "
                                                      "the stored one")
    network: str
    rate: Optional[Rate] = None
    rate_up: Optional[Rate] = None
    rate_down: Optional[Rate] = None
    session_timeout: Optional[int] = None
    ip: Optional[str] = None
    cos: Optional[int] = None
    method: Optional[EapMethodKind] = Field(None, description="the one EAP method this user may use (default md5)")


class VRouter(Body):
    host: str
    tenant: Optional[str] = None
    nics: list[Nic] = []
    state: Optional[Literal["running", "paused", "stopped"]] = None
    migrating_to: Optional[str] = None


class VLink(Body):
    between: list[str] = Field(..., description="the two virtual routers it joins")
    vnid: int
    subnet: str
    guarantee: Optional[Rate] = None
    limit: Optional[Rate] = None


class Tenant(Body):
    pass


class Migrate(Body):
    to: str = Field(..., description="the host to move it to")
    live: bool = Field(True, description="false: detach, then attach (a baseline)")


class Copy(Body):
    name: str = Field(..., description="the copy's name")
    host: Optional[str] = Field(None, description="its hypervisor (default: the original's)")


class Rerate(Body):
    guarantee: Optional[Rate] = Field(None, description="minimum under contention; 0: none")
    limit: Optional[Rate] = Field(None, description="maximum; 0: the physical capacity")


class Detach(Body):
    why: str = "revoked by the operator"


class Wait(str, Enum):
    applied = "applied"


class Problem(BaseModel):
    path: str
    message: str


class Problems(BaseModel):
    """422: what the loader (or the API) found wrong, each problem at its document path."""
    detail: str
    problems: list[Problem]


class Written(BaseModel):
    kind: str
    name: str
    revision: Optional[int] = Field(None, description="the store revision written (null: nothing changed)")
    applied: Optional[list[str]] = Field(None, description="with ?wait=applied: the hosts that applied it")
