"""Every daemon's way out: SIGTERM or SIGINT sets an event its loops check.

The handler itself only writes a byte to a pipe; a relay thread sets the event. Setting an
Event takes a lock, and a Python signal handler runs in the main thread between any two
bytecodes, so a second signal arriving while the first handler held that lock (or while the
main thread waited on the event) deadlocked the process: an admission shard, sent SIGTERM by
its agent and again by the parent-death signal, hung and outlived its lab.
"""
from __future__ import annotations

import os
import signal
import threading
from typing import Callable


def stop_on_signals(also: Callable[[], None] | None = None) -> threading.Event:
    """Install the handlers (main thread only); `also` runs once, in the relay thread, after
    the event is set, e.g. to wake a blocking loop."""
    stopping = threading.Event()
    r, w = os.pipe()
    os.set_blocking(w, False)

    def on_signal(*_: object) -> None:
        try:
            os.write(w, b"\0")  # no lock: safe however the signals nest
        except BlockingIOError:
            pass  # the pipe is full: the relay has more than enough to wake on

    def relay() -> None:
        os.read(r, 1)
        stopping.set()
        if also is not None:
            also()

    threading.Thread(target=relay, name="signals", daemon=True).start()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stopping
