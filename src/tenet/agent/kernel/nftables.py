"""nftables driver: swap the agent's `netdev tenet` table atomically, observe its digest.

The digest lives in the table's comment (nft 1.0.6 JSON omits table comments, so the
text listing is read). A comment survives edits to the rules under it (`nft flush chain`,
`nft delete rule`), so the driver also keeps the kernel's own listing of the table as it
first saw it after our last swap — counters masked — and reports a table whose listing has
moved since as foreign ("?"): the agent swaps it back. The reference is the first listing
after a swap, not one taken by the swap itself: under churn that read would cost a tenth of
the admission rate, and the agent reads the table back within 200 ms of its last change
anyway. An edit inside that window, or before a restarted agent's first look, is adopted
until the next swap. Uses the `nft` binary on stdin (one transaction: the old table goes and the new one comes in
the same commit, so no frame sees a half-built ruleset). Runs in the caller's namespace.
"""
from __future__ import annotations

import functools
import re
import subprocess

from tenet.agent.translation import TABLE, digest_of


class NftError(RuntimeError):
    pass


@functools.cache
def _library():
    """libnftables in-process (Debian python3-nftables), created lazily: it binds to the
    namespace it is created in, which must be the agent's. None: fall back to the CLI."""
    try:
        import nftables

        return nftables.Nftables()
    except ImportError:
        return None


def _nft(args: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    lib = _library()
    if lib is not None:
        rc, out, err = lib.cmd(stdin if stdin is not None else " ".join(args))
        return subprocess.CompletedProcess(args, rc, out, err)
    return subprocess.run(["nft", *args], input=stdin, capture_output=True, text=True)


def run_script(script: str) -> subprocess.CompletedProcess[str]:
    """`nft -f -` of `script`, one transaction, in-process when libnftables is there (no fork
    of the `nft` binary: 2–4 ms saved on every call). For callers with tables of their own."""
    return _nft(["-f", "-"], stdin=script)


COUNTERS = re.compile(r"counter packets \d+ bytes \d+")
_reference: dict[str, str] = {}  # "listing": the table as the kernel showed it after our last swap


def _listing() -> str | None:
    r = _nft(["list", "table", "netdev", TABLE])
    return COUNTERS.sub("counter", r.stdout) if r.returncode == 0 else None


def observe_digest() -> str:
    """The digest stored as the table comment; "" when the table does not exist; "?" when it
    is not (or no longer) the table we wrote."""
    listing = _listing()
    if listing is None:
        return ""
    reference = _reference.setdefault("listing", listing)
    return digest_of(listing) if listing == reference and digest_of(listing) else "?"


def apply(text: str) -> None:
    """Replace the table with `text` (or remove it when text is empty) in one transaction."""
    script = f"table netdev {TABLE} {{}}\ndelete table netdev {TABLE}\n{text}"
    r = _nft(["-f", "-"], stdin=script)  # one transaction either way
    if r.returncode != 0:  # nothing changed: the reference still describes the table
        raise NftError(f"nft rejected the translation ruleset: {r.stderr.strip()}")
    _reference.pop("listing", None)  # the next observation (next pass, or ≤ 200 ms later) sets it


DROPS = re.compile(r"counter packets (\d+) bytes \d+ .*?\bdrop\b")
CHAIN = re.compile(r"^\s*chain (\S+) \{")


def dropped(listing: str) -> dict[str, int]:
    """Packets counted by each chain's `counter … drop` rules, from a table's text listing."""
    out: dict[str, int] = {}
    chain = ""
    for line in listing.splitlines():
        m = CHAIN.match(line)
        if m:
            chain = m.group(1)
            continue
        m = DROPS.search(line)
        if m and chain:
            out[chain] = out.get(chain, 0) + int(m.group(1))
    return out


def shape(listing: str) -> str:
    """A listing with its counters masked: what changes only when the rules do."""
    return COUNTERS.sub("counter", listing)


def list_table(family: str, table: str) -> str | None:
    """A table's listing through the `nft` binary: for readers on other threads than the one
    that swaps tables (a libnftables context is not to be shared between threads)."""
    try:
        r = subprocess.run(["nft", "list", "table", family, table], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout if r.returncode == 0 else None
