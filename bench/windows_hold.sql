-- One window hold's transaction as the booking service writes it
-- (bench/windows.py runs this with pgbench beside the service, in the same
-- run, as the ceiling): the hold; in a savepoint, the unit's advisory lock
-- and the window on the unit, which the exclusion constraint checks; then
-- the audit row, the outbox row and the idempotency record's response in one
-- statement. The originals: services/booking/repository/window_holds.py
-- (insert_window_hold, record_window_hold) and windows.py (place_window);
-- keep them in step. What the service reads before it (rules, hours, units,
-- busy windows) is not here: that is part of what the ratio measures.
--
-- pgbench -M prepared -D tenant=... -D resource=... -D units='{uuid,...}'
--   -D base=... -D stride=... -D seating=... -D turnover=... -D k=...
-- (seconds; bench/windows_client.py's window_of): client c holds on the
-- (c+1)-th unit of :units the window [base + k * stride, + seating), guarded until `turnover`
-- after it, for k = the -D value + 1, + 2, ...: no two transactions ever
-- want overlapping windows on one unit.
\set k :k + 1
\set starts :base + :k * :stride
\set ends :starts + :seating
\set guard_until :ends + :turnover
BEGIN;
INSERT INTO holds AS h (tenant_id, resource_id, status, quantity, customer_ref,
                        currency, total_minor, expires_at)
VALUES (:tenant, :resource::uuid, 'HELD', 2, 'pgbench', 'EUR', 1000,
        now() + interval '10 minutes')
RETURNING h.id AS hold_id, h.resource_id, h.status, h.quantity, h.customer_ref, h.currency,
          h.total_minor, h.expires_at, h.payment_ref, h.status_reason, h.created_at,
          h.updated_at
\gset
SAVEPOINT place_window;
SELECT pg_advisory_xact_lock(1970170228, unit_key) FROM resource_units
WHERE tenant_id = :tenant AND id = (:units::uuid[])[:client_id + 1];
INSERT INTO unit_windows (tenant_id, hold_id, resource_id, unit_id, unit_key,
                          starts_at, ends_at, guard_from, guard_until)
SELECT :tenant, :hold_id::uuid, resource_id, id, unit_key,
       to_timestamp(:starts), to_timestamp(:ends), :starts, :guard_until
FROM resource_units
WHERE tenant_id = :tenant AND id = (:units::uuid[])[:client_id + 1]
  AND resource_id = :resource::uuid AND active
  AND EXISTS (SELECT 1 FROM holds WHERE tenant_id = :tenant AND id = :hold_id::uuid
              AND status IN ('HELD', 'CONFIRMED'))
RETURNING hold_id, unit_id, resource_id, starts_at, ends_at, guard_from, guard_until, live;
RELEASE SAVEPOINT place_window;
WITH audit AS (
    INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, to_status, actor,
                           correlation_id, details)
    VALUES (:tenant, 'hold', :hold_id::uuid, 'hold.created', 'HELD', 'pgbench',
            md5(random()::text),
            jsonb_build_object('quantity', 2, 'unit_id', (:units::uuid[])[:client_id + 1],
                               'unit_name', 'T', 'window', jsonb_build_array(
                                   to_timestamp(:starts), to_timestamp(:ends))))
), outbox AS (
    INSERT INTO outbox (topic, message_key, tenant_id, payload, dedupe_key, traceparent,
                        correlation_id)
    VALUES ('availability', :resource, :tenant,
            jsonb_build_object('change', 'hold.created', 'resource_id', :resource::uuid,
                               'slot_ids', '{}'::uuid[], 'hold_id', :hold_id::uuid),
            'hold.created:' || :hold_id, NULL, md5(random()::text))
)
UPDATE idempotency_records SET response = NULL
WHERE tenant_id = :tenant AND request_id = NULL;
COMMIT;
