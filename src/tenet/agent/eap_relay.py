"""One relayed EAP exchange, as both pass-through authenticators keep it: the access switch's
(802.1X, authenticator.py) and the NVO3 NVE's (admission.py). Pure: time is an argument.

An exchange waits for one of two parties at a time. After an EAP-Request went to the
supplicant (or TES), for the *supplicant*: the request is sent again when no Response came
within a retransmission timeout that starts at `supp_timeout` and doubles up to
`supp_timeout_max`, at most `max_req` times; then the supplicant is taken to be gone and the
attempt ends. After a Response was relayed, for the *server*: the RADIUS client retries and
fails over on its own and reports an error; `server_timeout` is the backstop should no answer
ever come. While the server is asked, a Response with the same identifier is the supplicant's
retransmission (it resends its last Response when a Request is repeated, RFC 3748 §4.3) and is
not relayed again; one with any other identifier answers nothing we asked.

Every Access-Request carries a tag unique to the authenticator; the server's answer is taken
only for the tag in flight, so a late answer to an attempt that was restarted, timed out or
ended can never drive the next one.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import Enum


@dataclass(frozen=True)
class Timers:
    """The relay's timers. Names follow IEEE 802.1X-2004 §8.2 and RFC 3748 §4.3.

    802.1X's suppTimeout is 30 s, flat; hostapd's EAP server instead backs off from 3 s,
    doubling to at most 20 s (eap_server.c, calculateTimeout) — taken here: a frame lost in a
    ten-round EAP-TLS exchange costs 3 s, not 30, and a premature retransmission costs one
    frame (the supplicant answers it from its last Response). With 802.1X's maxReq of 2, a
    silent supplicant is given up after 3 + 6 + 12 = 21 s — within a supplicant's own
    authPeriod (30 s), so the switch, not the supplicant, ends the attempt."""

    supp_timeout: float = 3.0  # first retransmission timeout of an EAP-Request …
    supp_timeout_max: float = 20.0  # … doubling up to this
    max_req: int = 2  # retransmissions of one EAP-Request before the attempt is given up
    server_timeout: float = 30.0  # no answer from RADIUS this long: a server failure
    quiet_period: float = 60.0  # a rejected supplicant is ignored this long (802.1X quietPeriod)
    server_restarts: int = 2  # fresh starts of one attempt after mid-exchange server failures (802.1X reAuthMax)
    server_retry: float = 60.0  # an authorization kept through a server failure is re-authenticated again after this
    max_rounds: int = 50  # Access-Requests in one attempt before it is refused (hostapd's EAP_MAX_AUTH_ROUNDS)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value < 0 or (value == 0 and f.name not in ("max_req", "server_restarts")):
                raise ValueError(f"EAP relay timer {f.name} = {value}: must be positive")
        if self.supp_timeout_max < self.supp_timeout:
            raise ValueError(f"EAP relay timer supp_timeout_max = {self.supp_timeout_max} is below "
                             f"supp_timeout = {self.supp_timeout}")

    def retransmit_after(self, sent: int) -> float:
        """How long a Request already sent again `sent` times waits for its Response."""
        return min(self.supp_timeout * 2 ** sent, self.supp_timeout_max)


class RelayEvent(str, Enum):
    """What the relay notes for the metrics (counted at the I/O edge, never inside)."""

    RETRANSMIT = "retransmit"  # the last EAP-Request sent again
    SUPPLICANT_TIMEOUT = "supplicant_timeout"  # no Response after max_req retransmissions: attempt ended
    SERVER_TIMEOUT = "server_timeout"  # RADIUS failed (or was silent for server_timeout) mid-exchange
    RESTART = "restart"  # … so the attempt starts again with a fresh Request-Identity
    DUPLICATE = "duplicate"  # a Response whose twin awaits the server's answer: not relayed again
    STALE = "stale"  # a Response to no request in flight (an older identifier): dropped


@dataclass(frozen=True)
class Noted:
    """An event of one exchange, for counting and the log: `who` (a MAC), `detail` (why)."""

    event: RelayEvent
    who: str
    detail: str = ""


@dataclass(frozen=True)
class Exchange:
    """Where one authentication attempt stands. Idle (the default): no exchange runs."""

    request: bytes | None = None  # the last EAP-Request sent, while its Response is awaited
    sent: int = 0  # … how often it was sent again
    due: float | None = None  # … when the supplicant's time is up
    tag: int = 0  # the Access-Request in flight (0: none)
    asked: float = 0.0  # … when it was sent
    rounds: int = 0  # Access-Requests in this attempt
    restarts: int = 0  # fresh starts of this attempt after server failures

    @property
    def pending(self) -> bool:
        """An Access-Request awaits the server's answer."""
        return self.tag != 0

    @property
    def running(self) -> bool:
        return self.request is not None or self.pending

    def asking(self, now: float, timers: Timers, request: bytes) -> Exchange:
        """An EAP-Request went to the supplicant: wait for its Response."""
        return replace(self, request=request, sent=0, due=now + timers.retransmit_after(0), tag=0)

    def relaying(self, now: float, tag: int) -> Exchange:
        """A Response went to the server as Access-Request `tag`: wait for its answer."""
        return replace(self, request=None, sent=0, due=None, tag=tag, asked=now, rounds=self.rounds + 1)

    def again(self, now: float, timers: Timers) -> Exchange:
        """The request was sent again."""
        return replace(self, sent=self.sent + 1, due=now + timers.retransmit_after(self.sent + 1))

    def judge(self, expected_id: int, got_id: int) -> RelayEvent | None:
        """Whether a Response may be relayed (None), or why not."""
        if got_id != expected_id or not self.running:
            return RelayEvent.STALE
        return RelayEvent.DUPLICATE if self.pending else None

    def answers(self, tag: int | None) -> bool:
        """Is a server's answer tagged `tag` the one awaited? (None: untagged, taken if any is.)"""
        return self.pending and (tag is None or tag == self.tag)

    def server_late(self, now: float, timers: Timers) -> bool:
        return self.pending and now - self.asked >= timers.server_timeout

    def supplicant_late(self, now: float) -> bool:
        return self.due is not None and now >= self.due
