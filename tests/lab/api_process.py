"""`tenet api` on a lab, as a test starts it: a process of our own, stopped by its PID."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from waiting import wait


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/openapi.json", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


@contextmanager
def serving(lab) -> Iterator[tuple[str, dict]]:
    """The API's base URL and the lab's tokens (the file `tenet api` writes at first use)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tenet.cli.main", "api", "--lab", lab.name, "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        tokens_file = lab.record.dir / "api-tokens.json"
        wait(lambda: proc.poll() is None and tokens_file.exists() and _up(port), 20, "the API to serve")
        yield f"http://127.0.0.1:{port}", json.loads(tokens_file.read_text())
    finally:
        proc.terminate()  # the PID we started
        out, _ = proc.communicate(timeout=10)
        print(out)
