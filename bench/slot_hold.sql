-- One slot hold as the booking service runs it (bench/holds.py runs this with
-- pgbench beside the service, in the same run, as the ceiling): the preview
-- read on the pool (prices, whether a full slot has lapsed holds), then the
-- transaction: the slot's row lock with the transaction's time, and the
-- capacity, hold, line, audit row, outbox row and idempotency response in one
-- statement. The originals: services/booking/repository/inventory.py
-- (preview_slots, lock_slots) and holds.py (insert_hold); keep them in step.
-- No request id, like the bench's gRPC calls.
--
-- pgbench -M prepared -D tenant=... -D resource=... -D slots='{uuid,...}'
-- client c holds one unit of the (c+1)-th slot of :slots, no two clients
-- share a slot (each slot's capacity outlasts the run).
\set quantity 1
SELECT s.id, s.resource_id, s.starts_at, s.ends_at, s.capacity, s.held, s.booked, s.closed,
       s.version, r.price_minor, r.currency,
       CASE WHEN s.capacity - s.held - s.booked < :quantity THEN EXISTS (
           SELECT 1 FROM hold_lines l JOIN holds h ON h.id = l.hold_id
           WHERE l.slot_id = s.id AND h.status = 'HELD' AND h.expires_at <= now())
       ELSE false END AS has_expired_holds
FROM slots s JOIN resources r ON r.id = s.resource_id
WHERE s.tenant_id = :tenant AND s.id = ANY(ARRAY[(:slots::uuid[])[:client_id + 1]])
\gset preview_
BEGIN;
SELECT id, resource_id, starts_at, ends_at, capacity, held, booked, closed, version,
       now() AS tx_now, gen_random_uuid() AS hold_id
FROM slots
WHERE tenant_id = :tenant AND id = ANY(ARRAY[(:slots::uuid[])[:client_id + 1]])
ORDER BY id
FOR UPDATE
\gset
WITH taken AS (
    UPDATE slots SET held = held + :quantity, version = version + 1
    WHERE tenant_id = :tenant AND id = ANY(ARRAY[:id::uuid])
), hold AS (
    INSERT INTO holds (id, tenant_id, resource_id, status, quantity, customer_ref,
                       currency, total_minor, expires_at, created_at, updated_at)
    VALUES (:hold_id::uuid, :tenant, :resource::uuid, 'HELD', :quantity, 'bench',
            :preview_currency, :quantity::int * :preview_price_minor::bigint,
            :tx_now::timestamptz + interval '10 minutes', :tx_now::timestamptz,
            :tx_now::timestamptz)
), lines AS (
    INSERT INTO hold_lines (hold_id, tenant_id, slot_id, starts_at, ends_at, unit_minor)
    SELECT :hold_id::uuid, :tenant, * FROM unnest(ARRAY[:id::uuid],
        ARRAY[:starts_at::timestamptz], ARRAY[:ends_at::timestamptz],
        ARRAY[:preview_price_minor::bigint])
), audit AS (
    INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, to_status, actor,
                           correlation_id, details)
    VALUES (:tenant, 'hold', :hold_id::uuid, 'hold.created', 'HELD', 'pgbench',
            md5(random()::text),
            jsonb_build_object('quantity', :quantity::int, 'slots', ARRAY[:id::uuid]))
), outbox AS (
    INSERT INTO outbox (topic, message_key, tenant_id, payload, dedupe_key, traceparent,
                        correlation_id)
    VALUES ('availability', :resource, :tenant,
            jsonb_build_object('change', 'hold.created', 'resource_id', :resource::uuid,
                               'slot_ids', ARRAY[:id::uuid], 'hold_id', :hold_id::uuid),
            'hold.created:' || :hold_id, NULL, md5(random()::text))
)
UPDATE idempotency_records SET response = NULL
WHERE tenant_id = :tenant AND request_id = NULL;
COMMIT;
