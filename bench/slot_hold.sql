-- One slot hold as the booking service runs it (bench/holds.py runs this with
-- pgbench beside the service, in the same run, as the ceiling): the preview
-- read on the pool (prices, the read's time, whether a full slot has lapsed
-- holds), then one statement that locks the slot and, as it fits, takes the
-- capacity and writes the hold, its line, its audit row and its outbox row
-- (and claims the request id, which the bench's calls do not send). The
-- originals: services/booking/repository/inventory.py (preview_statement) and
-- placement.py (place_hold_statement); keep them in step. Both name their
-- slots as an array of known length (ARRAY[...], `sql.listed`), so Postgres
-- plans them once, as it does here. The hold's id, which the service makes in
-- Python, comes with the preview here. The outbox row is
-- written as already published: the booking service's relay would otherwise
-- publish pgbench's rows too, on the service's CPU, during its rounds.
--
-- pgbench -M prepared -D tenant=... -D resource=... -D slots='{uuid,...}'
-- client c holds one unit of the (c+1)-th slot of :slots, no two clients
-- share a slot (each slot's capacity outlasts the run).
\set quantity 1
SELECT s.id, s.resource_id, s.starts_at, s.ends_at, s.capacity, s.held, s.booked, s.closed,
       s.version, r.price_minor, r.currency, now() AS read_at,
       CASE WHEN s.capacity - s.held - s.booked < :quantity THEN EXISTS (
           SELECT 1 FROM hold_lines l JOIN holds h ON h.id = l.hold_id
           WHERE l.slot_id = s.id AND h.status = 'HELD' AND h.expires_at <= now())
       ELSE false END AS has_expired_holds,
       gen_random_uuid() AS hold_id
FROM slots s JOIN resources r ON r.id = s.resource_id
WHERE s.tenant_id = :tenant AND s.id = ANY(ARRAY[(:slots::uuid[])[:client_id + 1]])
\gset
WITH locked AS MATERIALIZED (
    SELECT id, resource_id, starts_at, ends_at, capacity, held, booked, closed, version
    FROM slots
    WHERE tenant_id = :tenant AND id = ANY(ARRAY[:id::uuid])
    ORDER BY id
    FOR UPDATE
), fits AS (
    SELECT count(*) = 1 AND coalesce(bool_and(NOT closed
                                              AND capacity - held - booked >= :quantity::int),
                                     false) AS ok
    FROM locked
), claim AS (
    INSERT INTO idempotency_records (tenant_id, request_id, method, request_hash, response)
    SELECT :tenant, NULL, NULL, NULL, NULL FROM fits WHERE ok AND NULL::text IS NOT NULL
    ON CONFLICT DO NOTHING
    RETURNING true
), going AS (
    SELECT true FROM fits WHERE ok AND (NULL::text IS NULL OR EXISTS (SELECT FROM claim))
), taken AS (
    UPDATE slots SET held = held + :quantity::int, version = version + 1
    WHERE tenant_id = :tenant AND id = ANY(ARRAY[:id::uuid]) AND EXISTS (SELECT FROM going)
), hold AS (
    INSERT INTO holds (id, tenant_id, resource_id, status, quantity, customer_ref,
                       currency, total_minor, expires_at, created_at, updated_at)
    SELECT :hold_id::uuid, :tenant, :resource::uuid, 'HELD', :quantity::int, 'bench',
           :currency, :quantity::int * :price_minor::bigint,
           :read_at::timestamptz + interval '10 minutes', :read_at::timestamptz,
           :read_at::timestamptz
    FROM going
), lines AS (
    INSERT INTO hold_lines (hold_id, tenant_id, slot_id, starts_at, ends_at, unit_minor)
    SELECT :hold_id::uuid, :tenant, line.* FROM going, unnest(ARRAY[:id::uuid],
        ARRAY[:starts_at::timestamptz], ARRAY[:ends_at::timestamptz],
        ARRAY[:price_minor::bigint]) line
), audit AS (
    INSERT INTO audit_log (tenant_id, entity_type, entity_id, action, to_status, actor,
                           correlation_id, details)
    SELECT :tenant, 'hold', :hold_id::uuid, 'hold.created', 'HELD', 'pgbench',
           md5(random()::text),
           jsonb_build_object('quantity', :quantity::int, 'slots', ARRAY[:id::uuid])
    FROM going
), outbox AS (
    INSERT INTO outbox (topic, message_key, tenant_id, payload, dedupe_key, traceparent,
                        correlation_id, published_at)
    SELECT 'availability', :resource, :tenant,
           jsonb_build_object('change', 'hold.created', 'resource_id', :resource::uuid,
                              'slot_ids', ARRAY[:id::uuid], 'hold_id', :hold_id::uuid),
           'hold.created:' || :hold_id, NULL, md5(random()::text), now()
    FROM going
)
SELECT l.*, EXISTS (SELECT FROM going) AS placed,
       CASE WHEN l.capacity - l.held - l.booked < :quantity::int THEN EXISTS (
           SELECT 1 FROM hold_lines hl JOIN holds h ON h.id = hl.hold_id
           WHERE hl.slot_id = l.id AND h.status = 'HELD' AND h.expires_at <= now())
       ELSE false END AS has_expired_holds
FROM locked l;
