"""The fake's own clock: real time plus an offset tests can move forward.

Checkout sessions lapse 30 minutes to 24 hours after creation; advancing this
clock lets a test see a session lapse (and `checkout.session.expired` arrive)
without waiting. Only Stripe's own timestamps follow it (`created`,
`expires_at`); webhook signatures use real time, because the receiver checks
them against its own clock.
"""

from __future__ import annotations

import time


class Clock:
    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> int:
        """Seconds since the epoch, as Stripe's timestamps are: whole seconds."""
        return int(time.time() + self._offset)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset += seconds

    def reset(self) -> None:
        self._offset = 0.0
