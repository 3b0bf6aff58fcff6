"""nftables driver: swap the agent's `netdev tenet` table atomically, observe its digest.

The digest lives in the table's comment (nft 1.0.6 JSON omits table comments, so the
text listing is read). Uses the `nft` binary on stdin (one transaction: the old table goes and the new one comes in
the same commit, so no frame sees a half-built ruleset). Runs in the caller's namespace.
"""
from __future__ import annotations

import functools
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


def observe_digest() -> str:
    """The digest stored as the table comment; "" when the table does not exist."""
    r = _nft(["list", "table", "netdev", TABLE])
    if r.returncode != 0:
        return ""
    return digest_of(r.stdout) or "?"  # "?" = a table we did not write: replace it


def apply(text: str) -> None:
    """Replace the table with `text` (or remove it when text is empty) in one transaction."""
    script = f"table netdev {TABLE} {{}}\ndelete table netdev {TABLE}\n{text}"
    r = _nft(["-f", "-"], stdin=script)  # one transaction either way
    if r.returncode != 0:
        raise NftError(f"nft rejected the translation ruleset: {r.stderr.strip()}")
