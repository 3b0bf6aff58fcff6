"""The distributed store: an etcd v3 cluster, spoken to through its gRPC-JSON gateway (/v3/...).

Our own small client (http.client, JSON, base64 keys and values) instead of a library: etcd3gw
swallows a watch's `compact_revision` and python-etcd3 breaks on protobuf >= 4, and the
compaction rule is the one thing a level-triggered reader must never miss.

URL: ``etcd://host:port[,host:port...][?cacert=PATH&cert=PATH&key=PATH&user=NAME&password-file=PATH&netns=NAME]``.
Several endpoints are members of one cluster: a request that cannot reach one (refused, reset,
timed out, or the member has no leader) is sent to the next. A `cacert` turns on TLS (https to
every member, certificate and host name verified); `cert` and `key` add a client certificate,
both or neither. After a member refused us, the next is used once it follows another leader (a
follower of a dead leader holds requests until its election timeout).

`user` and `password-file` log in to a cluster with auth enabled (etcd RBAC): the client asks
for a token when etcd first refuses it, and again when etcd says the token is invalid or stale,
then repeats the request once. Through the JSON gateway etcd ignores a client certificate's
name (and refuses one that has a CommonName once auth is on), so the user is who we are; the
certificate only lets us connect. `netns` creates every socket inside that named network
namespace (store/netns.py: the lab's root-side tools reach its management network).

Revisions are etcd's minus one, so that an empty store is at 0 and its first write at 1, as in
SQLite; compares, watches and compaction translate. A watch is one gateway stream per call,
created from the caller's revision: after a member dies the next call (or the same call, on
another member) resumes from there, and a compacted start is raised as `Compacted`.
A conditional txn whose request was sent but whose answer was lost is not retried (it may have
applied): it raises `OutcomeUnknown`, and the caller reads again.
"""
from __future__ import annotations

import base64
import http.client
import json
import select
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from tenet.store.base import (
    Compacted,
    Compare,
    Delete,
    DeletePrefix,
    Event,
    KeyValue,
    LeaseExpired,
    Op,
    Put,
    StoreError,
)
from tenet.store.netns import dial

TIMEOUT = 2.0  # one request to one member: a member whose leader just died holds requests
HEADERS = {"Content-Type": "application/json",
           # etcd 3.4 knows a request came through its gateway by the forwarded Accept header:
           # without it, it takes the member's own certificate's CN for the user
           "Accept": "application/json",
           "Grpc-Metadata-hasleader": "true"}  # a member without a leader says so at once
PATIENCE = 15.0  # all members, all retries: long enough for a new leader to be elected
BACKOFF = 0.05  # between two rounds over every member
REPLAY = 1.0  # etcd replays a watch's past from a loop that runs every 100 ms: wait this for it
UNAVAILABLE = 14  # gRPC code: the member cannot serve now (no leader, stopping, ...)
PERMISSION_DENIED = 7  # gRPC code: RBAC refused the request (or we have not logged in yet)
STALE_TOKEN = ("invalid auth token", "auth store is old")  # log in again, then repeat
ANONYMOUS = ("permission denied", "user name not found", "user name is empty")  # with auth on, no token yet
SAFE_UNAVAILABLE = ("no leader", "not capable", "too many requests", "stopped")  # never applied
TARGETS = {"mod": ("MOD", "mod_revision"), "create": ("CREATE", "create_revision"), "version": ("VERSION", "version"), "value": ("VALUE", "value")}
RESULTS = {"==": "EQUAL", "!=": "NOT_EQUAL", ">": "GREATER", "<": "LESS"}


class OutcomeUnknown(StoreError):
    """A conditional transaction was sent but its answer lost: it may or may not have applied."""


class PermissionDenied(StoreError):
    """etcd's RBAC refused the request: this user may not read or write that key."""


@dataclass(frozen=True)
class Tls:
    cacert: str
    cert: str | None = None
    key: str | None = None

    def context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.cacert)
        if self.cert:
            ctx.load_cert_chain(self.cert, self.key)
        return ctx


@dataclass(frozen=True)
class Login:
    """An etcd user, and the file holding its password (read at each login, never in the URL)."""

    user: str
    password_file: str

    def password(self) -> str:
        try:
            return Path(self.password_file).read_text().strip()
        except OSError as e:
            raise StoreError(f"etcd password file for {self.user!r}: {e}") from None


@dataclass(frozen=True)
class EtcdUrl:
    endpoints: tuple[tuple[str, int], ...]
    tls: Tls | None = None
    login: Login | None = None
    netns: str | None = None


OPTIONS = ("cacert", "cert", "key", "user", "password-file", "netns")
FILES = ("cacert", "cert", "key", "password-file")


def parse_url(url: str) -> EtcdUrl:
    """`etcd://h:p,h:p?cacert=..&cert=..&key=..&user=..&password-file=..&netns=..` -> its
    parts, every file checked to exist."""
    if not url.startswith("etcd://"):
        raise StoreError(f"not an etcd URL: {url!r}")
    hosts, _, query = url[len("etcd://"):].partition("?")
    endpoints = []
    for part in hosts.split(","):
        host, sep, port = part.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise StoreError(f"bad etcd endpoint {part!r} in {url!r} (expected host:port)")
        endpoints.append((host.strip("[]"), int(port)))
    options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise StoreError(f"unknown etcd URL option(s) {sorted(unknown)} (known: {', '.join(OPTIONS)})")
    for name in FILES:
        if name in options and not Path(options[name]).is_file():
            raise StoreError(f"etcd {name} file {options[name]!r} does not exist")
    if ("cert" in options) != ("key" in options):
        raise StoreError("etcd client TLS needs both cert and key")
    if ("cert" in options or "key" in options) and "cacert" not in options:
        raise StoreError("etcd TLS needs cacert (the CA that signed the members' certificates)")
    if ("user" in options) != ("password-file" in options):
        raise StoreError("etcd login needs both user and password-file")
    netns = options.get("netns")
    if netns is not None and (not netns or "/" in netns or netns in (".", "..")):
        raise StoreError(f"etcd netns must name a network namespace, not {netns!r}")
    tls = Tls(options["cacert"], options.get("cert"), options.get("key")) if "cacert" in options else None
    login = Login(options["user"], options["password-file"]) if "user" in options else None
    return EtcdUrl(tuple(endpoints), tls, login, netns)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _key(key: str) -> str:
    return _b64(key.encode())


RANGE_PAGE = 2000  # keys per range reply
REPLAY_PAUSE = 0.25  # s: a pause within a replayed reply that does not end the watch


def _prefix_end(prefix: str) -> str:
    """etcd's range end for a prefix: the prefix with its last byte incremented."""
    b = bytearray(prefix.encode())
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return _b64(b"\0")  # with key "\0": every key
    b[-1] += 1
    return _b64(bytes(b))


def _ours(rev: str | int | None) -> int:
    """etcd's revision (1 for an empty cluster) to ours (0); 0 (a missing key's) stays 0."""
    r = int(rev or 0)
    return r - 1 if r > 0 else 0


def _theirs(rev: int) -> int:
    return rev + 1 if rev > 0 else rev


def _kv(d: dict) -> KeyValue:
    return KeyValue(base64.b64decode(d["key"]).decode(), base64.b64decode(d.get("value", "")),
                    _ours(d.get("mod_revision")), _ours(d.get("create_revision")), int(d.get("version", 0)))


def _check_put(op: Put) -> None:
    if not isinstance(op.value, bytes):
        raise TypeError(f"value for {op.key} must be bytes, not {type(op.value).__name__}")


def _request_op(op: Op) -> dict:
    if isinstance(op, Put):
        _check_put(op)
        put = {"key": _key(op.key), "value": _b64(op.value)}
        if op.lease:
            put["lease"] = str(op.lease)
        return {"request_put": put}
    if isinstance(op, Delete):
        return {"request_delete_range": {"key": _key(op.key)}}
    if isinstance(op, DeletePrefix):
        return {"request_delete_range": {"key": _key(op.prefix) if op.prefix else _b64(b"\0"), "range_end": _prefix_end(op.prefix)}}
    raise TypeError(f"not a store operation: {op!r}")


def _compare(c: Compare) -> dict:
    target, field = TARGETS[c.target]
    if c.target == "value":
        if not isinstance(c.operand, bytes):
            raise TypeError(f"a value compare on {c.key} needs bytes, not {type(c.operand).__name__}")
        operand: str = _b64(c.operand)
    else:
        if not isinstance(c.operand, int):
            raise TypeError(f"a {c.target} compare on {c.key} needs an int, not {type(c.operand).__name__}")
        operand = str(_theirs(c.operand) if c.target in ("mod", "create") else c.operand)
    return {"key": _key(c.key), "target": target, "result": RESULTS[c.op], field: operand}


class _Failed(Exception):
    """This member could not answer; `sent`: the request may have reached it; `down`: the
    member could not be reached at all."""

    def __init__(self, why: str, sent: bool, down: bool = False) -> None:
        super().__init__(why)
        self.sent, self.down = sent, down


class EtcdStore:
    def __init__(self, endpoints: Sequence[tuple[str, int]], tls: Tls | None = None, timeout: float = TIMEOUT,
                 patience: float = PATIENCE, login: Login | None = None, netns: str | None = None) -> None:
        if not endpoints:
            raise StoreError("etcd needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.ssl = tls.context() if tls else None
        self.login, self.netns = login, netns
        self.token: str | None = None  # etcd's auth token, once it asked us to log in
        self.narrow = False  # our role may not read every key (see revision)
        self.timeout, self.patience = timeout, patience
        self.current = 0  # the member we talk to until it fails
        self.ids: dict[int, str] = {}  # endpoint -> etcd member id, learned from answers
        self.gone: set[str] = set()  # members that refused us since the last leader we saw
        self.conn: http.client.HTTPConnection | None = None
        self.lock = threading.Lock()  # one keep-alive connection for unary requests

    @classmethod
    def from_url(cls, url: str) -> EtcdStore:
        u = parse_url(url)
        return cls(u.endpoints, u.tls, login=u.login, netns=u.netns)

    def close(self) -> None:
        with self.lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    # -- transport ---------------------------------------------------------------------
    def _connect(self, member: int, timeout: float) -> http.client.HTTPConnection:
        """A connection to one member, its socket made here (in our netns, if any) and
        handed to http.client."""
        host, port = self.endpoints[member]
        sock = None
        try:
            sock = dial(host, port, timeout, self.netns)
            if self.ssl is not None:
                sock = self.ssl.wrap_socket(sock, server_hostname=host)
        except ssl.SSLError as e:  # a certificate problem is not an outage: say so at once
            if sock is not None:
                sock.close()
            raise StoreError(f"etcd TLS with {host}:{port} failed: {e}") from e
        except OSError as e:
            if sock is not None:
                sock.close()
            raise _Failed(f"{host}:{port}: {e}", sent=False, down=True) from e
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock
        return conn

    def _headers(self) -> dict[str, str]:
        token = self.token
        return {**HEADERS, "Authorization": token} if token else HEADERS

    def _fresh(self) -> http.client.HTTPConnection:
        """The kept connection if its member has not closed it meanwhile (a readable idle socket
        is EOF or a reset), else a new one: a request is never sent into a dead connection."""
        if self.conn is not None and self.conn.sock is not None:
            if not select.select([self.conn.sock], [], [], 0)[0]:
                return self.conn
        if self.conn is not None:
            self.conn.close()
        self.conn = None
        self.conn = self._connect(self.current, self.timeout)
        return self.conn

    def _once(self, path: str, body: dict) -> dict:
        conn = self._fresh()
        try:
            conn.request("POST", path, json.dumps(body), self._headers())
            resp = conn.getresponse()
            data = resp.read()
        except ssl.SSLError as e:  # TLS 1.3: a refused client certificate shows on the first read
            conn.close()
            self.conn = None
            raise StoreError(f"etcd TLS with {self.endpoints[self.current]} failed: {e}") from e
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            self.conn = None
            raise _Failed(f"{self.endpoints[self.current]}: {e!r}", sent=True) from e
        try:
            reply = json.loads(data)
        except ValueError as e:
            raise _Failed(f"{self.endpoints[self.current]}: not JSON ({resp.status}): {data[:200]!r}", sent=True) from e
        if isinstance(reply.get("header"), dict) and reply["header"].get("member_id"):
            self.ids[self.current] = reply["header"]["member_id"]
        return reply

    def _await_leader(self, deadline: float) -> None:
        """After a member refused us: until the member we now use follows a leader other than
        one that refused (it notices the loss only after an election timeout, and meanwhile
        holds requests rather than failing them), up to one request timeout."""
        until = min(deadline, time.monotonic() + self.timeout)
        while time.monotonic() < until:
            leader = self._once("/v3/maintenance/status", {}).get("leader")
            if leader and leader not in self.gone:
                break
            time.sleep(BACKOFF)
        self.gone.clear()

    def _call(self, path: str, body: dict, *, retry_sent: bool = True) -> dict:
        """POST to the current member; on failure try the others, round after round, until
        `patience` runs out. `retry_sent`: the request is safe to repeat after it may have
        been applied (everything but a conditional txn)."""
        deadline = time.monotonic() + self.patience
        tried, logged_in = 0, False
        with self.lock:
            while True:
                try:
                    if self.gone:
                        self._await_leader(deadline)
                    reply = self._once(path, body)
                    if "error" not in reply:
                        return reply
                    message, code = str(reply.get("message") or reply["error"]), reply.get("code")
                    if self.login is not None and not logged_in and (
                            any(s in message for s in STALE_TOKEN) or (self.token is None and any(s in message for s in ANONYMOUS))):
                        self._log_in()  # refused before anything applied: safe to repeat
                        logged_in = True
                        continue
                    if code != UNAVAILABLE:
                        return reply  # the caller interprets the error
                    raise _Failed(message, sent=not any(s in message for s in SAFE_UNAVAILABLE))
                except _Failed as e:
                    if e.down and self.current in self.ids:
                        self.gone.add(self.ids[self.current])
                    if e.sent and not retry_sent:
                        raise OutcomeUnknown(f"etcd {path}: {e}; it may or may not have applied") from None
                    if time.monotonic() > deadline:
                        raise StoreError(f"etcd unreachable ({', '.join(f'{h}:{p}' for h, p in self.endpoints)}): {e}") from None
                    if self.conn is not None:
                        self.conn.close()
                        self.conn = None
                    self.current = (self.current + 1) % len(self.endpoints)
                    tried += 1
                    if tried % len(self.endpoints) == 0:
                        time.sleep(BACKOFF)

    def _log_in(self) -> None:
        """A new token for our user (the lock is held). A member without a leader cannot
        answer: like any outage, the next one is asked."""
        assert self.login is not None
        self.token = None
        reply = self._once("/v3/auth/authenticate", {"name": self.login.user, "password": self.login.password()})
        if "error" in reply:
            message = str(reply.get("message") or reply["error"])
            if reply.get("code") == UNAVAILABLE:
                raise _Failed(message, sent=False)
            raise StoreError(f"etcd login as {self.login.user!r} failed: {message}")
        self.token = reply["token"]

    def _error(self, reply: dict, what: str, body: dict | None = None) -> StoreError:
        message = reply.get("message") or reply.get("error")
        if reply.get("code") == PERMISSION_DENIED or "user name is empty" in str(message):  # the latter: anonymous
            key = base64.b64decode(body["key"]).decode(errors="replace") if body and body.get("key") else ""
            who = f"user {self.login.user!r}" if self.login else "no user (the URL has no user=)"
            return PermissionDenied(f"etcd {what}{f' of {key}' if key else ''}: {message} ({who})")
        return StoreError(f"etcd {what}: {message}")

    def _ok(self, path: str, body: dict, *, retry_sent: bool = True) -> dict:
        reply = self._call(path, body, retry_sent=retry_sent)
        if "error" in reply:
            message = str(reply.get("message") or reply["error"])
            if "lease not found" in message:
                lease = int(body.get("ID") or body.get("lease") or _lease_in(body))
                raise LeaseExpired(lease)
            raise self._error(reply, path, body)
        return reply

    def request(self, path: str, body: dict) -> dict:
        """One call of etcd's v3 JSON API (auth, cluster, maintenance: what the Store protocol
        does not cover), with the same failover and login; an error answer raises StoreError."""
        return self._ok(path, body)

    # -- reads -------------------------------------------------------------------------
    def revision(self) -> int:
        """The cluster's revision (a linearizable read of key NUL). A user whose role may not
        read that key gets the member's own applied revision instead (an empty
        transaction needs no permission): never ahead of the cluster, so a watch started
        from it replays a little at worst and never skips."""
        if not self.narrow:
            body = {"key": _b64(b"\0"), "count_only": True}  # one key: cheap, linearizable
            reply = self._call("/v3/kv/range", body)
            if "error" not in reply:
                return _ours(reply["header"]["revision"])
            if reply.get("code") != PERMISSION_DENIED:
                raise self._error(reply, "revision")
            self.narrow = True
        return _ours(self._ok("/v3/kv/txn", {})["header"]["revision"])

    def get(self, key: str) -> KeyValue | None:
        kvs = self._ok("/v3/kv/range", {"key": _key(key)}).get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    def range(self, prefix: str) -> list[KeyValue]:
        """Every key under `prefix`, in pages of RANGE_PAGE read at the first page's revision
        (one snapshot, however large: 100,000 endpoint reports exceed a single reply's limit)."""
        body: dict = {"key": _key(prefix) if prefix else _b64(b"\0"), "range_end": _prefix_end(prefix),
                      "limit": str(RANGE_PAGE)}
        out: list[KeyValue] = []
        while True:
            reply = self._ok("/v3/kv/range", body)
            out += [_kv(d) for d in reply.get("kvs", [])]
            if not reply.get("more"):
                return out
            body = {**body, "key": _b64(out[-1].key.encode() + b"\0"), "revision": reply["header"]["revision"]}

    # -- writes ------------------------------------------------------------------------
    def put(self, key: str, value: bytes, lease: int = 0) -> int:
        body = _request_op(Put(key, value, lease))["request_put"]
        return _ours(self._ok("/v3/kv/put", body)["header"]["revision"])

    def delete(self, key: str) -> int:
        return _ours(self._ok("/v3/kv/deleterange", {"key": _key(key)})["header"]["revision"])

    def txn(self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()) -> tuple[bool, int]:
        body = {"compare": [_compare(c) for c in compares], "success": [_request_op(op) for op in success],
                "failure": [_request_op(op) for op in failure]}  # built first: a bad op sends nothing
        reply = self._ok("/v3/kv/txn", body, retry_sent=not compares)
        return bool(reply.get("succeeded")), _ours(reply["header"]["revision"])

    def compact(self, revision: int) -> None:
        """Forget history before `revision` (clamped to the present; compacting the past again is a no-op)."""
        target = min(_theirs(revision), _theirs(self.revision()) or 1)
        reply = self._call("/v3/kv/compaction", {"revision": str(target), "physical": True})
        if "error" in reply and "compacted" not in str(reply.get("message")):
            raise self._error(reply, "compaction")

    # -- leases ------------------------------------------------------------------------
    def grant(self, ttl: int) -> int:
        if not isinstance(ttl, int) or ttl < 1:
            raise ValueError(f"lease TTL must be a whole number of seconds >= 1, not {ttl!r}")
        return int(self._ok("/v3/lease/grant", {"TTL": str(ttl)})["ID"])

    def keepalive(self, lease: int) -> int:
        """One renewal: the gateway's keepalive is a stream; one request, one answer, closed."""
        deadline = time.monotonic() + self.patience
        while True:
            try:
                reply = self._stream_first("/v3/lease/keepalive", {"ID": str(lease)})
                break
            except _Failed as e:
                if time.monotonic() > deadline:
                    raise StoreError(f"etcd unreachable: {e}") from None
                self._next_member()
        if "error" in reply:
            raise self._error(reply, "keepalive")
        ttl = int(reply.get("result", {}).get("TTL", 0))
        if ttl <= 0:
            raise LeaseExpired(lease)
        return ttl

    def lease_ttl(self, lease: int) -> tuple[int, float] | None:
        """etcd answers whole seconds, rounded down: an age read so is up to 1 s long."""
        reply = self._ok("/v3/lease/timetolive", {"ID": str(lease)})
        left = int(reply.get("TTL", -1))
        return (int(reply.get("grantedTTL", 0)), float(left)) if left > 0 else None

    def revoke(self, lease: int) -> None:
        reply = self._call("/v3/lease/revoke", {"ID": str(lease)})
        if "error" in reply and "lease not found" not in str(reply.get("message")):
            raise self._error(reply, "revoke")

    def _next_member(self) -> None:
        with self.lock:
            self.current = (self.current + 1) % len(self.endpoints)
        time.sleep(BACKOFF)

    def _stream_first(self, path: str, body: dict) -> dict:
        conn = self._connect(self.current, self.timeout)
        try:
            conn.request("POST", path, json.dumps(body), self._headers())
            line = conn.getresponse().readline()
            if not line:
                raise _Failed(f"{path}: closed", sent=True)
            return json.loads(line)
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise _Failed(f"{path}: {e!r}", sent=True) from e
        finally:
            conn.close()

    # -- watch -------------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int, timeout: float) -> list[Event]:
        """Events under `prefix` from `start_revision`: what history holds, else the first that
        arrive within `timeout`, else []. A member lost mid-wait: the same watch on the next one.
        No member answering for `patience`: StoreError (from the history check), not silence."""
        deadline = time.monotonic() + timeout
        self._check_history(prefix, start_revision)
        # fragment: etcd sends a replay of up to 1,000 revisions as one batch; the tables of a
        # thousand hosts written since would make one reply larger than the gateway passes
        create = {"key": _key(prefix) if prefix else _b64(b"\0"), "range_end": _prefix_end(prefix),
                  "start_revision": str(_theirs(start_revision) if start_revision > 0 else 1), "fragment": True}
        while True:
            try:
                return self._watch_once(create, start_revision, deadline)
            except _Failed:
                if time.monotonic() >= deadline:
                    return []
                self._next_member()

    def _check_history(self, prefix: str, start_revision: int) -> None:
        """Compacted now, not after etcd's next sync: a read at the start revision tells. It
        reads the prefix's own key, which whoever may watch the prefix may read."""
        reply = self._call("/v3/kv/range", {"key": _key(prefix) if prefix else _b64(b"\0"),
                                            "revision": str(_theirs(start_revision) if start_revision > 0 else 1),
                                            "count_only": True})
        if "error" in reply:
            message = str(reply.get("message") or reply["error"])
            if "compacted" in message:
                raise Compacted(start_revision)
            if "future revision" not in message:
                raise self._error(reply, "watch", {"key": _key(prefix)})

    def _watch_once(self, create: dict, start_revision: int, deadline: float) -> list[Event]:
        with self.lock:
            member = self.current
        conn = self._connect(member, self.timeout)  # even with timeout 0: the past is still returned
        try:
            # hasleader: the member cancels the watch if it loses its leader, instead of going quiet
            conn.request("POST", "/v3/watch", json.dumps({"create_request": create}), self._headers())
            sock = conn.sock  # the response reads through it even if the connection lets go of it
            resp = conn.getresponse()
            created = False
            pending: list[Event] = []  # a fragmented batch's events so far
            replaying = False
            while True:
                left = deadline - time.monotonic()
                if created and left <= 0:
                    return []
                # until the watch is created, a silent member is a dead one (bounded by TIMEOUT);
                # while a past is replayed, one reply can be megabytes that a loaded member
                # writes with pauses: cutting it at the deadline would replay it all again
                sock.settimeout(self.timeout if not created else max(REPLAY_PAUSE if replaying else 0.001, left))
                try:
                    line = resp.readline()
                except TimeoutError:
                    if created:
                        return []
                    raise
                if not line:
                    raise _Failed("watch stream closed", sent=False)
                msg = json.loads(line)
                if "error" in msg:
                    raise _Failed(str(msg.get("error")), sent=False)
                result = msg.get("result", {})
                if int(result.get("compact_revision", 0) or 0) > 0:
                    raise Compacted(start_revision)
                if result.get("canceled") and "permission denied" in str(result.get("cancel_reason")):
                    raise self._error({"code": PERMISSION_DENIED, "message": "permission denied"}, "watch", create)
                if result.get("canceled"):
                    raise _Failed(f"watch canceled: {result.get('cancel_reason', '')}", sent=False)
                if result.get("created") and not created:
                    created = True
                    replaying = int(create["start_revision"]) <= int(result.get("header", {}).get("revision", 0))
                    if replaying:
                        # a past to replay: etcd sends it from its sync loop, or nothing if none
                        # of it is ours; a short timeout must not return [] before it could come
                        deadline = max(deadline, time.monotonic() + REPLAY)
                events = [_event(e) for e in result.get("events", [])]
                if result.get("fragment"):  # one batch split across replies: the rest follows
                    pending += events
                    continue
                events, pending = pending + events, []
                if events:
                    return events
        except (OSError, http.client.HTTPException, ValueError) as e:
            raise _Failed(f"watch on {self.endpoints[member]}: {e!r}", sent=False) from e
        finally:
            conn.close()


def _event(e: dict) -> Event:
    kv = e["kv"]
    kind = "delete" if e.get("type") == "DELETE" else "put"
    key = base64.b64decode(kv["key"]).decode()
    return Event(kind, key, base64.b64decode(kv.get("value", "")) if kind == "put" else None, _ours(kv["mod_revision"]))


def _lease_in(body: dict) -> int:
    for op in body.get("success", []) + body.get("failure", []):
        if op.get("request_put", {}).get("lease"):
            return int(op["request_put"]["lease"])
    return 0
