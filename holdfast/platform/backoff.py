"""Exponential backoff written once, as SQL: the database schedules retries.

Every retried thing (an outbox message, a Stripe event, a checkout the
reconciler looks at, a refund) keeps its count of tries in a column and its
next try time in another; the delay is computed in the UPDATE that records a
try, so no replica needs to read the row first.
"""

from __future__ import annotations


def backoff_seconds_sql(tries: str, base: str, cap: str, *, jitter: bool = False) -> str:
    """SQL for the seconds until the next try after the `tries`-th:
    base * 2^(tries - 1), at most `cap`; with `jitter`, spread over 75-125 %
    of that so that a burst of failures does not come back as one burst.

    The arguments are SQL expressions (columns or `$n` parameters), never
    values from a caller: the result is pasted into a statement."""
    delay = f"least({cap}::float8, {base}::float8 * power(2, least({tries}, 30) - 1))"
    return f"{delay} * (0.75 + random() / 2)" if jitter else delay
