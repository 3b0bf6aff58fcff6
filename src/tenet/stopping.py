"""Every daemon's way out: SIGTERM or SIGINT sets an event its loops check."""
from __future__ import annotations

import signal
import threading
from typing import Callable


def stop_on_signals(also: Callable[[], None] | None = None) -> threading.Event:
    """Install the handlers (main thread only); `also` runs in the handler, e.g. to wake a
    blocking loop."""
    stopping = threading.Event()

    def stop(*_: object) -> None:
        stopping.set()
        if also is not None:
            also()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return stopping
