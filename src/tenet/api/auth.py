"""Who may do what: bearer tokens, one for the admin and one per tenant.

A tenant's token sees and changes only its own tenant's VNs, VMs, users, routers and links; for
another tenant's object it gets 404, as for one that does not exist, so a token never learns
what others have. The fabric (hosts, tables) is the admin's.

The tokens file (JSON) is read again whenever it changes, so a token is added or withdrawn
without a restart:  {"admin": "…", "tenants": {"acme": "…", "globex": "…"}}
"""
from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path


class TokensError(ValueError):
    pass


@dataclass(frozen=True)
class Caller:
    tenant: str | None  # None: the admin

    @property
    def admin(self) -> bool:
        return self.tenant is None


@dataclass(frozen=True)
class Tokens:
    admin: str
    tenants: tuple[tuple[str, str], ...]  # (tenant, token)

    def caller(self, token: str) -> Caller | None:
        """Who holds `token`, or None. Every comparison runs, in constant time each."""
        found = Caller(None) if hmac.compare_digest(token.encode(), self.admin.encode()) else None
        for tenant, t in self.tenants:
            if hmac.compare_digest(token.encode(), t.encode()) and found is None:
                found = Caller(tenant)
        return found

    @classmethod
    def from_json(cls, text: str, source: str = "tokens") -> "Tokens":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise TokensError(f"{source}: not JSON ({e})") from None
        if not isinstance(d, dict) or not isinstance(d.get("admin"), str) or len(d["admin"]) < 16:
            raise TokensError(f"{source}: 'admin' must be a token of at least 16 characters")
        tenants = d.get("tenants", {})
        if not isinstance(tenants, dict) or not all(isinstance(k, str) and isinstance(v, str) and len(v) >= 16
                                                    for k, v in tenants.items()):
            raise TokensError(f"{source}: 'tenants' maps each tenant to a token of at least 16 characters")
        every = [d["admin"], *tenants.values()]
        if len(set(every)) != len(every):
            raise TokensError(f"{source}: a token is given twice")
        return cls(d["admin"], tuple(sorted(tenants.items())))

    def with_tenant(self, tenant: str, token: str | None) -> "Tokens":
        """A new or rotated token for `tenant` (None: the tenant's token withdrawn)."""
        rest = tuple((t, k) for t, k in self.tenants if t != tenant)
        return Tokens(self.admin, tuple(sorted(rest + (((tenant, token),) if token else ()))))

    def to_json(self) -> str:
        return json.dumps({"admin": self.admin, "tenants": dict(self.tenants)}, indent=1) + "\n"


def generate(tenants: list[str]) -> Tokens:
    return Tokens(new_token(), tuple((t, new_token()) for t in sorted(set(tenants))))


class TokensFile:
    """The tokens, as the file now says (read again when its mtime changes)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None  # (inode, mtime): a replaced file is a new inode
        self._tokens = self._read()

    def _read(self) -> Tokens:
        try:
            st = self.path.stat()
            if st.st_mode & 0o077:
                raise TokensError(f"{self.path}: readable by others (chmod 600 it)")
            self._seen = (st.st_ino, st.st_mtime_ns)
            return Tokens.from_json(self.path.read_text(), str(self.path))
        except OSError as e:
            raise TokensError(f"{self.path}: {e.strerror}") from None

    @property
    def tokens(self) -> Tokens:
        with self._lock:
            try:
                st = self.path.stat()
                if (st.st_ino, st.st_mtime_ns) != self._seen:
                    self._tokens = self._read()
            except (OSError, TokensError):
                pass  # a file half-written or removed: keep the last good tokens
            return self._tokens


def save(path: str | Path, tokens: Tokens) -> None:
    """Replace the file whole (a reader never sees half of it), mode 600 from the first byte."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(tokens.to_json())
    tmp.replace(path)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def write_new(path: str | Path, tenants: list[str]) -> Tokens:
    """A fresh tokens file, mode 600 from its first byte."""
    tokens = generate(tenants)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(tokens.to_json())
    return tokens
