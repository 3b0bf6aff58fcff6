"""Wake-ups for SQLite watchers: inotify on the database's write-ahead log.

Every commit appends to `<db>-wal`, so a watcher blocks on an inotify descriptor instead of
polling: a change is seen within microseconds and an idle watcher costs nothing. A fallback
poll bounds the damage if a notification is ever missed (the log file recreated, inotify
unavailable): correctness never depends on the wake-up, only latency does.
"""
from __future__ import annotations

import ctypes
import os
import select

IN_MODIFY = 0x00000002
IN_CLOEXEC = 0o2000000
IN_NONBLOCK = 0o4000


class Changes:
    def __init__(self, path: str) -> None:
        self.path = path.encode()
        try:
            self.libc = ctypes.CDLL(None, use_errno=True)
            self.fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        except (OSError, AttributeError):
            self.fd = -1

    def arm(self) -> bool:
        """(Re)add the watch; cheap when it exists. False: fall back to polling."""
        return self.fd >= 0 and self.libc.inotify_add_watch(self.fd, self.path, IN_MODIFY) >= 0

    def wait(self, timeout: float) -> bool:
        """Block until the log changes (or `timeout`), then drain the queued events. True: the
        log changed."""
        if self.fd < 0:
            select.select([], [], [], timeout)
            return False
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            try:
                while os.read(self.fd, 4096):
                    pass
            except BlockingIOError:
                pass
        return bool(ready)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
