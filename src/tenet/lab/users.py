"""The lab as its RADIUS server's operator: when the intent's users change, FreeRADIUS gets
the new users (the lab restarts it with the same secret) and every live session of a changed
user is told, as an operator tells it (RFC 5176): a CoA-Request with the new rates when only
the rates changed — applied in place, the session goes on — and a Disconnect-Request
otherwise (a CoA cannot lift a limit or move a session), after which the TES attaches again
under the new Access-Accept, or not at all for a user that is gone.
"""
from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from tenet.model.rate import parse_rate
from tenet.model.tenancy import AaaUser
from tenet.store.records import EndpointReport


@dataclass(frozen=True)
class SessionChange:
    """What one admitted MAC's NVE is told: its new rates (a CoA carries only those it sets),
    or to end the session."""

    nve: str  # the host that admitted it
    mac: str
    disconnect: bool = False
    up_bps: int | None = None
    down_bps: int | None = None


def session_changes(before: Sequence[AaaUser], after: Sequence[AaaUser],
                    reports: Iterable[EndpointReport]) -> tuple[SessionChange, ...]:
    """A CoA where only the user's rates changed and no limit was lifted (a CoA can set a
    limit, not remove one); a Disconnect for any other change to the user, or its removal."""
    old, new = {u.name: u for u in before}, {u.name: u for u in after}
    out = []
    for r in sorted(reports, key=lambda r: (r.host, r.mac)):
        was, now = old.get(r.identity), new.get(r.identity)
        if was is None or was == now:
            continue
        rates_only = now is not None and replace(was, rate=now.rate, rate_up=now.rate_up, rate_down=now.rate_down) == now
        lifted = now is not None and ((was.limit_up and not now.limit_up) or (was.limit_down and not now.limit_down))
        if now is None or not rates_only or lifted:
            out.append(SessionChange(r.host, r.mac, disconnect=True))
        else:
            out.append(SessionChange(r.host, r.mac, up_bps=parse_rate(now.limit_up) if now.limit_up else None,
                                     down_bps=parse_rate(now.limit_down) if now.limit_down else None))
    return tuple(out)


def dynauth_argv(change: SessionChange, nas: str, secret_file: str) -> list[str]:
    """The operator's command (aaa/dynauth_client.py), run where the RADIUS server is: the
    NVE takes dynamic authorization from its RADIUS server's address only."""
    argv = [sys.executable, "-m", "tenet.aaa.dynauth_client", "--nas", nas, "--secret-file", secret_file,
            "--mac", change.mac]
    if change.disconnect:
        return argv + ["disconnect"]
    return argv + ["coa", *(["--up", str(change.up_bps)] if change.up_bps else []),
                   *(["--down", str(change.down_bps)] if change.down_bps else [])]
