"""SQL written once: the audit row and the outbox row that writers add to
their statements (as CTEs), and the column lists rows are read with.

Every argument is an SQL expression (a parameter such as "$3", a column, a
quoted literal); `source`, when given, is the FROM clause (with WHERE, GROUP
BY, ...) the rows are selected from, one row per row of it; without it one
row is inserted.
"""

from __future__ import annotations

from holdfast.platform.streams import AVAILABILITY_TOPIC, PAYMENTS_TOPIC

SLOT_COLUMNS = "id, resource_id, starts_at, ends_at, capacity, held, booked, closed, version"
HOLD_COLUMNS = (
    "h.id, h.resource_id, h.status, h.quantity, h.customer_ref, h.currency, h.total_minor,"
    " h.expires_at, h.payment_ref, h.status_reason, h.created_at, h.updated_at"
)


def listed(array: str, count: int) -> str:
    """The `count` elements of the array parameter `array` (say "$2::uuid[]"),
    as an array of that known length: `= ANY(listed(...))` instead of
    `= ANY($2::uuid[])`. Postgres guesses ten elements for an array parameter,
    so the plan it makes once for any values (the generic plan) looks dearer
    than one made for the values at hand, and it plans such a statement
    again on every run; with the length in the text it plans it once per
    connection. Callers build one statement per count."""
    return "ARRAY[" + ", ".join(f"({array})[{i}]" for i in range(1, count + 1)) + "]"


def _insert(table: str, values: dict[str, str | None], source: str | None) -> str:
    given = {column: value for column, value in values.items() if value is not None}
    columns, expressions = ", ".join(given), ", ".join(given.values())
    if source is None:
        return f"INSERT INTO {table} ({columns}) VALUES ({expressions})"
    return f"INSERT INTO {table} ({columns}) SELECT {expressions} {source}"


def insert_audit(
    *,
    tenant_id: str,
    entity_type: str,
    entity_id: str,
    action: str,
    actor: str,
    correlation_id: str,
    from_status: str | None = None,
    to_status: str | None = None,
    reason: str | None = None,
    details: str | None = None,
    source: str | None = None,
) -> str:
    """An audit row: who (`actor`) did what (`action`) to which entity."""
    values = {
        "tenant_id": tenant_id,
        "entity_type": entity_type,
        "entity_id": entity_id,
        "action": action,
        "from_status": from_status,
        "to_status": to_status,
        "actor": actor,
        "reason": reason,
        "correlation_id": correlation_id,
        "details": details,
    }
    return _insert("audit_log", values, source)


# Every change that moves availability also inserts an outbox row in the same
# statement: the transactional outbox (see services.booking.outbox.relay). So does a
# hold that lapses or is released while its Stripe checkout is still open:
# the relay expires the session at Stripe, after the commit.
def insert_outbox(
    *,
    topic: str,
    message_key: str,
    tenant_id: str,
    payload: str,
    dedupe_key: str,
    traceparent: str,
    correlation_id: str,
    source: str | None = None,
    skip_duplicates: bool = False,
) -> str:
    """An outbox row on `topic` (a topic name, not an expression)."""
    values: dict[str, str | None] = {
        "topic": f"'{topic}'",
        "message_key": message_key,
        "tenant_id": tenant_id,
        "payload": payload,
        "dedupe_key": dedupe_key,
        "traceparent": traceparent,
        "correlation_id": correlation_id,
    }
    return _insert("outbox", values, source) + (
        " ON CONFLICT (dedupe_key) DO NOTHING" if skip_duplicates else ""
    )


def availability_changed(
    *,
    change: str,
    resource_id: str,
    slot_ids: str,
    tenant_id: str,
    dedupe_key: str,
    traceparent: str,
    correlation_id: str,
    hold_id: str | None = None,
    source: str | None = None,
) -> str:
    """The outbox row telling availability that `slot_ids` of `resource_id` changed."""
    payload = (
        f"jsonb_build_object('change', {change}, 'resource_id', {resource_id},"
        f" 'slot_ids', {slot_ids}" + (f", 'hold_id', {hold_id})" if hold_id else ")")
    )
    return insert_outbox(
        topic=AVAILABILITY_TOPIC,
        message_key=f"{resource_id}::text",
        tenant_id=tenant_id,
        payload=payload,
        dedupe_key=dedupe_key,
        traceparent=traceparent,
        correlation_id=correlation_id,
        source=source,
    )


def expire_open_sessions(
    *, tenant_id: str, hold_id: str, traceparent: str, correlation_id: str, source: str
) -> str:
    """The payment action expiring at Stripe the OPEN checkout sessions `c`
    selected by `source` (once per session: a repeated expiry is skipped)."""
    return insert_outbox(
        topic=PAYMENTS_TOPIC,
        message_key="c.session_id",
        tenant_id=tenant_id,
        payload=(
            "jsonb_build_object('action', 'expire_checkout',"
            f" 'session_id', c.session_id, 'hold_id', {hold_id})"
        ),
        dedupe_key="'checkout.expire:' || c.session_id",
        traceparent=traceparent,
        correlation_id=correlation_id,
        source=source,
        skip_duplicates=True,
    )
