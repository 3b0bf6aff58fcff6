"""Where the lab's processes serve their Prometheus metrics, and how to read them.

Every process listens on the loopback of the namespace it runs in: a host's agent and its
802.1X proxy in the host's namespace, controllers in theirs (etcd labs) or, on SQLite labs,
in the root namespace on a free loopback port. Loopback is never routed, so nothing joins
the lab to the root namespace's interfaces (lab safety) and no tenant VM can reach an NVE's
metrics; a scraper runs where the process does (`ip netns exec NS curl URL`, or `scrape`).
The URL and namespace are recorded with the process (lab/record.py Proc.metrics, .netns).
"""
from __future__ import annotations

import socket
import subprocess

from tenet.exposition import Listen

LOOPBACK = "127.0.0.1"
CONTROLLER_PORT = 9100  # in a namespace of its own; the root namespace's: a free port
AGENT_PORT = 9108
PROXY_PORT = 9109  # beside the agent, in a host behind a switch


def listen_for(port: int, netns: str | None) -> Listen:
    """Where a process started in `netns` (None: the root namespace) serves its metrics."""
    return Listen(LOOPBACK, port if netns else free_port())


def free_port() -> int:
    """A loopback port nobody uses now (the kernel's pick), for a root-namespace process."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def scrape(url: str, netns: str = "", timeout: float = 5.0) -> str:
    """The text a process's /metrics serves, read from inside its namespace."""
    argv = ["curl", "-sS", "--fail", "--max-time", str(timeout), url]
    r = subprocess.run((["ip", "netns", "exec", netns] if netns else []) + argv, capture_output=True, text=True,
                       timeout=timeout + 5)
    if r.returncode != 0:
        raise RuntimeError(f"scraping {url}{f' in {netns}' if netns else ''} failed: {r.stderr.strip()}")
    return r.stdout
