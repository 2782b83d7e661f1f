-- One window hold as the booking service writes it (bench/windows.py runs
-- this with pgbench beside the service, in the same run, as the ceiling):
-- the hold with its audit and outbox rows in one statement, then, in a
-- savepoint, the unit's advisory lock and the window on the unit, which the
-- exclusion constraint checks. services/booking/repository/holds.py and
-- windows.py are the originals; keep them in step.
--
-- pgbench -M prepared -D tenant=... -D resource=... -D units='{uuid,...}'
--   -D base=... -D stride=... -D seating=... -D turnover=... -D k=...
-- (seconds; bench/windows_client.py's window_of): client c holds on unit
-- c + 1 the window [base + k * stride, + seating), guarded until `turnover`
-- after it, for k = the -D value + 1, + 2, ...: no two transactions ever
-- want overlapping windows on one unit.
\set k :k + 1
\set starts :base + :k * :stride
\set ends :starts + :seating
\set guard_until :ends + :turnover
BEGIN;
WITH hold AS (
    INSERT INTO holds (id, tenant_id, resource_id, status, quantity, customer_ref,
                       currency, total_minor, expires_at, created_at, updated_at)
    VALUES (gen_random_uuid(), :tenant, :resource::uuid, 'HELD', 2, 'pgbench',
            'EUR', 1000, now() + interval '10 minutes', now(), now())
    RETURNING id
), audit AS (
    INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, to_status, actor,
                           correlation_id, details)
    SELECT :tenant, 'hold', id, 'hold.created', 'HELD', 'pgbench', md5(random()::text),
           jsonb_build_object('quantity', 2, 'window', jsonb_build_object(
               'start', to_timestamp(:starts), 'end', to_timestamp(:ends)))
    FROM hold
), outbox AS (
    INSERT INTO outbox (topic, message_key, tenant_id, payload, dedupe_key, traceparent,
                        correlation_id)
    SELECT 'availability', :resource, :tenant,
           jsonb_build_object('change', 'hold.created', 'resource_id', :resource::uuid,
                              'slot_ids', '{}'::uuid[], 'hold_id', id),
           'hold.created:' || id::text, NULL, md5(random()::text)
    FROM hold
)
SELECT id AS hold_id FROM hold
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
              AND status IN ('HELD', 'CONFIRMED'));
RELEASE SAVEPOINT place_window;
COMMIT;
