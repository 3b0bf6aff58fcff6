"""Doorbells for SQLite watchers: a commit wakes only the watchers of the prefixes it touched.

Beside the database lies a directory of empty files, one per watched "directory" of keys up
to DEPTH components (`/tenet/`, `/tenet/hosts/`, `/tenet/hosts/h1/`), plus `all`, which every
commit rings. After a transaction commits, its writer rings the bell of every such ancestor of
every key it changed (`os.utime`: inotify reports IN_ATTRIB, the file never grows). A watcher of
prefix P listens to one bell: the longest directory ancestor of P within DEPTH (every key under
P has it as an ancestor, so the writer rings it). Ringing after the commit means a woken watcher
always sees the commit. Writers ring only bells that exist: a watcher creates its bell before it
reads, so a commit it could have missed is one it reads.

One inotify descriptor per process, whatever number of stores it opens (a user may hold only 128
by default: fs.inotify.max_user_instances), made at the first watch, and one dispatcher thread
that reads it and wakes only the threads waiting on the bell that rang: hundreds of watching
threads in a process each wake for their own prefix only. Correctness never depends on a bell
(the watcher polls slowly as well, and polls only when inotify is unavailable); only latency does.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import re
import select
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

DEPTH = 3  # components of the deepest bell: /tenet/hosts/<host>/
ALL = ""  # the bell every commit rings: watchers of "" and "/"

IN_ATTRIB = 0x00000004
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000
EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)


def bell_of_prefix(prefix: str) -> str:
    """The bell a watcher of `prefix` listens to: its longest ancestor ending in '/' within DEPTH
    components, or ALL."""
    cut = prefix.rfind("/") + 1
    head = prefix[:cut]
    while head.count("/") > DEPTH + head.startswith("/"):
        head = head[: head.rfind("/", 0, len(head) - 1) + 1]
    return ALL if head in ("", "/") else head


def bells_of_key(key: str) -> list[str]:
    """Every bell a change of `key` rings: ALL and its directory ancestors within DEPTH."""
    out = [ALL]
    start = 1 if key.startswith("/") else 0
    for _ in range(DEPTH):
        cut = key.find("/", start)
        if cut < 0:
            break
        out.append(key[: cut + 1])
        start = cut + 1
    return out


def file_name(bell: str) -> str:
    """A safe, bounded file name: a hash for uniqueness, a readable tail for people."""
    if bell == ALL:
        return "all"
    digest = hashlib.blake2b(bell.encode(), digest_size=6).hexdigest()
    return f"{digest}-{re.sub(r'[^A-Za-z0-9._-]+', '_', bell.strip('/'))[:64]}"


@dataclass
class Bell:
    """One bell file this process listens to: `rung` counts rings seen, waiters wait for it to move."""

    path: bytes
    wd: int
    cond: threading.Condition = field(default_factory=threading.Condition)
    rung: int = 0
    waiting: int = 0


@dataclass(frozen=True)
class Ticket:
    """What a watcher armed: the bell, and its ring count before the watcher read."""

    bell: Bell
    seen: int


class Hub:
    """The process's inotify descriptor and its dispatcher: bell files by path and watch descriptor."""

    RETRY = 1.0  # s between attempts to get a descriptor when the user has none left

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.by_path: dict[bytes, Bell] = {}
        self.by_wd: dict[int, Bell] = {}
        self.fd, self.tried = -1, float("-inf")  # tried: when inotify_init1 last ran
        self.thread: threading.Thread | None = None
        self.stop_r, self.stop_w = -1, -1
        try:
            self.libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            self.libc = None

    def arm(self, path: bytes) -> Ticket | None:
        with self.lock:
            bell = self.by_path.get(path)
            if bell is None:
                if not self._descriptor():
                    return None
                try:
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o666))
                except OSError:
                    return None
                wd = self.libc.inotify_add_watch(self.fd, path, IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
                if wd < 0:
                    return None
                bell = self.by_wd.get(wd) or Bell(path, wd)
                self.by_path[path] = self.by_wd[wd] = bell
            with bell.cond:
                return Ticket(bell, bell.rung)

    def bell(self, path: bytes) -> Bell | None:
        return self.by_path.get(path)

    def _descriptor(self) -> bool:
        """Under the lock: the descriptor and its dispatcher, made on first use."""
        if self.fd < 0 and self.libc is not None and time.monotonic() - self.tried >= self.RETRY:
            self.tried = time.monotonic()
            self.fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if self.fd >= 0:
                self.stop_r, self.stop_w = os.pipe2(os.O_CLOEXEC)
                self.thread = threading.Thread(target=self._dispatch, name="tenet-bells", daemon=True)
                self.thread.start()
        return self.fd >= 0

    def _dispatch(self) -> None:
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        poller.register(self.stop_r, select.POLLIN)
        while True:
            ready = {fd for fd, _ in poller.poll()}
            if self.stop_r in ready:
                return
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            except OSError:
                return
            rung: set[int] = set()
            dead: set[int] = set()
            overflow = False
            at = 0
            while at + EVENT.size <= len(data):
                wd, mask, _, n = EVENT.unpack_from(data, at)
                at += EVENT.size + n
                if mask & IN_Q_OVERFLOW:
                    overflow = True
                elif mask & IN_IGNORED:
                    dead.add(wd)
                else:
                    rung.add(wd)
            with self.lock:
                bells = list(self.by_wd.values()) if overflow else [self.by_wd[w] for w in rung | dead if w in self.by_wd]
                for wd in dead:  # the file was removed: forget it, so the next arm re-creates it
                    bell = self.by_wd.pop(wd, None)
                    if bell is not None and self.by_path.get(bell.path) is bell:
                        del self.by_path[bell.path]
            for bell in bells:  # waking a bell's waiters makes them look (and re-arm a dead one)
                with bell.cond:
                    bell.rung += 1
                    bell.cond.notify_all()

    def close(self) -> None:
        """Stop the dispatcher and drop the descriptor (tests; a process simply exits)."""
        if self.thread is not None:
            os.write(self.stop_w, b"x")
            self.thread.join()
            self.thread = None
        for fd in (self.stop_r, self.stop_w, self.fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.stop_r = self.stop_w = -1


_hub: Hub | None = None
_hub_lock = threading.Lock()


def hub() -> Hub:
    """This process's hub. A child forked with its parent's hub makes its own (no dispatcher
    thread survives a fork, and the inherited descriptor would share the parent's events)."""
    global _hub
    with _hub_lock:
        if _hub is None or _hub.pid != os.getpid():
            if _hub is not None:
                for fd in (_hub.fd, _hub.stop_r, _hub.stop_w):
                    if fd >= 0:
                        os.close(fd)
            _hub = Hub()
        return _hub


class Bells:
    """A store's view of its bell directory: rings bells after commits, arms and waits on them."""

    def __init__(self, directory: str | Path) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(exist_ok=True)
        except OSError:  # no bells here (a read-only directory): arm() fails, watchers poll
            pass
        self.wakeups = 0  # this store's waits ended by a ring (not by timeout): what a benchmark counts
        self.counting = threading.Lock()

    def _path(self, prefix: str) -> bytes:
        return bytes(self.dir / file_name(bell_of_prefix(prefix)))

    # -- the writer's side --------------------------------------------------------------
    def ring(self, keys: Iterable[str]) -> None:
        """After a commit: ring each bell of the changed keys once. A missing bell has no listener."""
        for name in {b for k in keys for b in bells_of_key(k)}:
            try:
                os.utime(self.dir / file_name(name))
            except OSError:  # missing: nobody listens; not permitted: the watcher's poll sees the commit
                pass

    # -- the watcher's side -------------------------------------------------------------
    def arm(self, prefix: str) -> Ticket | None:
        """Listen to `prefix`'s bell (creating it); call before reading. None: poll instead."""
        return hub().arm(self._path(prefix))

    def wait(self, ticket: Ticket, timeout: float) -> bool:
        """Block until the bell rang since `ticket` was armed, or `timeout`. True: it rang."""
        bell = ticket.bell
        with bell.cond:
            bell.waiting += 1
            try:
                rang = bell.cond.wait_for(lambda: bell.rung != ticket.seen, timeout)
            finally:
                bell.waiting -= 1
        if rang:
            with self.counting:
                self.wakeups += 1
        return rang

    def rings(self, prefix: str) -> int:
        """How often this process saw `prefix`'s bell ring (0 when it never listened to it)."""
        bell = hub().bell(self._path(prefix))
        return bell.rung if bell else 0

    def waiting(self, prefix: str) -> int:
        """Threads of this process now blocked on `prefix`'s bell (tests wait for a watcher to be armed)."""
        bell = hub().bell(self._path(prefix))
        if bell is None:
            return 0
        with bell.cond:
            return bell.waiting
