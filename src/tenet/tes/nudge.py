"""The hypervisor's nudge: SIGUSR1 tells a TES its VM now runs behind another NVE (a live
migration: seed 004's fifth embodiment, discovery "under the management of the hypervisor"),
so it discovers again at once instead of waiting for three missed hellos.

The handler only writes a byte to a pipe (no lock: see stopping.py); the links' select
watches the pipe, so a TES waiting for a HELLO_ACK wakes on it immediately.
"""
from __future__ import annotations

import os
import signal


class Nudge:
    def __init__(self, signum: int = signal.SIGUSR1) -> None:
        self.r, self.w = os.pipe()
        os.set_blocking(self.r, False)
        os.set_blocking(self.w, False)
        signal.signal(signum, self._on_signal)

    def _on_signal(self, *_: object) -> None:
        try:
            os.write(self.w, b"\0")
        except BlockingIOError:
            pass  # already nudged

    def fileno(self) -> int:
        return self.r

    def taken(self) -> bool:
        """Whether a nudge came since the last look (and forget it)."""
        got = False
        try:
            while os.read(self.r, 64):
                got = True
        except BlockingIOError:
            pass
        return got
