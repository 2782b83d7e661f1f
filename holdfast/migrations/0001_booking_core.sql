-- Booking core: inventory, holds/bookings, idempotency records, audit trail.
-- Every row carries its tenant; every query the booking service runs is scoped
-- by tenant and has an index below. Stock PostgreSQL 15/16, no extensions
-- (gen_random_uuid is built in since 13).

CREATE TABLE resources (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id         text NOT NULL,
    name              text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    time_zone         text NOT NULL,
    price_minor       bigint NOT NULL CHECK (price_minor >= 0),
    currency          char(3) NOT NULL,
    default_capacity  integer NOT NULL CHECK (default_capacity >= 0),
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- Lets slots reference (tenant_id, id) so a slot can never belong to a
    -- resource of another tenant.
    UNIQUE (tenant_id, id)
);
-- ListResources: newest first, keyset pagination.
CREATE INDEX resources_tenant_created_idx ON resources (tenant_id, created_at DESC, id DESC);

CREATE TABLE slots (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    text NOT NULL,
    resource_id  uuid NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    capacity     integer NOT NULL,
    held         integer NOT NULL DEFAULT 0,
    booked       integer NOT NULL DEFAULT 0,
    closed       boolean NOT NULL DEFAULT false,
    version      bigint NOT NULL DEFAULT 1,
    FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
    CONSTRAINT slots_time_order CHECK (ends_at > starts_at),
    CONSTRAINT slots_capacity_nonnegative CHECK (capacity >= 0),
    CONSTRAINT slots_counts_nonnegative CHECK (held >= 0 AND booked >= 0),
    -- The invariant, enforced by the database as a second line of defence
    -- behind the locked reservation transaction.
    CONSTRAINT slots_within_capacity CHECK (held + booked <= capacity),
    UNIQUE (resource_id, starts_at, ends_at),
    UNIQUE (tenant_id, id)
);
-- ListSlots and range reads: one resource's slots by start time.
CREATE INDEX slots_resource_start_idx ON slots (tenant_id, resource_id, starts_at, id);

CREATE TABLE holds (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id       text NOT NULL,
    resource_id     uuid NOT NULL,
    status          text NOT NULL CHECK (status IN
                        ('HELD', 'CONFIRMED', 'CANCELLED', 'REFUNDED', 'RELEASED', 'EXPIRED')),
    quantity        integer NOT NULL CHECK (quantity > 0),
    customer_ref    text NOT NULL DEFAULT '',
    currency        char(3) NOT NULL,
    total_minor     bigint NOT NULL CHECK (total_minor >= 0),
    expires_at      timestamptz NOT NULL,
    payment_ref     text,
    status_reason   text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, resource_id) REFERENCES resources (tenant_id, id),
    UNIQUE (tenant_id, id)
);
-- ListBookings, newest first, optionally by resource.
CREATE INDEX holds_tenant_created_idx ON holds (tenant_id, created_at DESC, id DESC);
CREATE INDEX holds_tenant_resource_created_idx
    ON holds (tenant_id, resource_id, created_at DESC, id DESC);
-- The sweeper: only live holds, by expiry.
CREATE INDEX holds_live_expiry_idx ON holds (expires_at) WHERE status = 'HELD';

-- The slots a hold covers, with the unit price quoted at hold time, so later
-- price changes never alter a hold.
CREATE TABLE hold_lines (
    hold_id     uuid NOT NULL REFERENCES holds (id),
    slot_id     uuid NOT NULL REFERENCES slots (id),
    tenant_id   text NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL,
    unit_minor  bigint NOT NULL CHECK (unit_minor >= 0),
    PRIMARY KEY (hold_id, slot_id)
);
-- Reclaiming expired holds on the slots a reservation has locked.
CREATE INDEX hold_lines_slot_idx ON hold_lines (slot_id);

-- AIP-155 request ids: the first response is kept and returned again for the
-- same request; the same id with another request is refused.
CREATE TABLE idempotency_records (
    tenant_id     text NOT NULL,
    request_id    text NOT NULL,
    method        text NOT NULL,
    request_hash  bytea NOT NULL,
    response      bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, request_id)
);
CREATE INDEX idempotency_records_created_idx ON idempotency_records (created_at);

-- Every state change, with who made it and why.
CREATE TABLE audit_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id       text NOT NULL,
    entity_type     text NOT NULL,
    entity_id       uuid NOT NULL,
    action          text NOT NULL,
    from_status     text,
    to_status       text,
    actor           text NOT NULL,
    reason          text NOT NULL DEFAULT '',
    correlation_id  text NOT NULL DEFAULT '',
    details         jsonb NOT NULL DEFAULT '{}',
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_entity_idx ON audit_log (tenant_id, entity_id, id);
