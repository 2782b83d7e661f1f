-- Windowed inventory: a resource sold as units (tables, rooms, bikes) for any
-- window [start, end) instead of pre-cut slots, and the database's refusal to
-- let two live holds or bookings on one unit share a buffered instant.
-- Stock PostgreSQL 15/16 and no extension (the embedded engine ships only
-- plpgsql, so no btree_gist): the exclusion is one GiST index over a built-in
-- range type, int8range, that encodes the unit and the time together.

-- A resource is SLOTTED (slots with a capacity, as before) or WINDOWED. The
-- tables below reference (tenant_id, id, kind) with a kind that can only be
-- 'WINDOWED', so units, hours and rules exist only for a windowed resource
-- of the same tenant, and a resource with any of them cannot change kind.
ALTER TABLE resources
    ADD COLUMN kind text NOT NULL DEFAULT 'SLOTTED' CHECK (kind IN ('SLOTTED', 'WINDOWED')),
    ADD CONSTRAINT resources_tenant_id_kind_key UNIQUE (tenant_id, id, kind);

-- The rules of a windowed resource, in whole minutes (holdfast.scheduling's
-- WindowRules): durations, the start grid counted from local midnight (whole
-- minutes dividing a day), the buffers guarded around each booking and the
-- lead time.
CREATE TABLE resource_window_rules (
    tenant_id              text NOT NULL,
    resource_id            uuid PRIMARY KEY,
    kind                   text NOT NULL DEFAULT 'WINDOWED' CHECK (kind = 'WINDOWED'),
    min_duration_minutes   integer NOT NULL CHECK (min_duration_minutes > 0),
    max_duration_minutes   integer NOT NULL,
    granularity_minutes    integer NOT NULL
        CHECK (granularity_minutes BETWEEN 1 AND 1440 AND 1440 % granularity_minutes = 0),
    buffer_before_minutes  integer NOT NULL DEFAULT 0 CHECK (buffer_before_minutes >= 0),
    buffer_after_minutes   integer NOT NULL DEFAULT 0 CHECK (buffer_after_minutes >= 0),
    lead_time_minutes      integer NOT NULL DEFAULT 0 CHECK (lead_time_minutes >= 0),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, resource_id, kind) REFERENCES resources (tenant_id, id, kind),
    CONSTRAINT resource_window_rules_durations
        CHECK (max_duration_minutes >= min_duration_minutes)
);

-- The units of a windowed resource. `unit_key` is the unit's number in the
-- exclusion encoding below: a positive integer, so at most 2^31 - 1 units
-- ever (an identity never reuses a number).
CREATE TABLE resource_units (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    unit_key     integer GENERATED ALWAYS AS IDENTITY UNIQUE CHECK (unit_key > 0),
    tenant_id    text NOT NULL,
    resource_id  uuid NOT NULL,
    kind         text NOT NULL DEFAULT 'WINDOWED' CHECK (kind = 'WINDOWED'),
    name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    size         integer NOT NULL CHECK (size > 0),
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tenant_id, resource_id, kind) REFERENCES resources (tenant_id, id, kind),
    UNIQUE (resource_id, name),
    UNIQUE (tenant_id, id),
    -- Lets unit_windows carry the unit's key and have it checked.
    UNIQUE (id, unit_key)
);
-- The units of a resource, best first (smallest, then by name).
CREATE INDEX resource_units_resource_idx ON resource_units (tenant_id, resource_id, size, name);

-- Weekly opening hours, wall-clock times in the resource's time_zone
-- (holdfast.scheduling.hours.OpeningRange): weekday 0 is Monday, as
-- date.weekday(); a range whose closing is not after its opening runs past
-- midnight. A weekday without rows is closed.
CREATE TABLE resource_hours (
    tenant_id    text NOT NULL,
    resource_id  uuid NOT NULL,
    kind         text NOT NULL DEFAULT 'WINDOWED' CHECK (kind = 'WINDOWED'),
    weekday      smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),
    opens        time NOT NULL,
    closes       time NOT NULL,
    FOREIGN KEY (tenant_id, resource_id, kind) REFERENCES resources (tenant_id, id, kind),
    PRIMARY KEY (resource_id, weekday, opens)
);

-- Dated exceptions replacing a day's weekly ranges: one row without times
-- closes the day; rows with times are that day's special ranges.
CREATE TABLE resource_hour_exceptions (
    tenant_id    text NOT NULL,
    resource_id  uuid NOT NULL,
    kind         text NOT NULL DEFAULT 'WINDOWED' CHECK (kind = 'WINDOWED'),
    day          date NOT NULL,
    opens        time,
    closes       time,
    FOREIGN KEY (tenant_id, resource_id, kind) REFERENCES resources (tenant_id, id, kind),
    CONSTRAINT resource_hour_exceptions_times CHECK ((opens IS NULL) = (closes IS NULL)),
    UNIQUE NULLS NOT DISTINCT (resource_id, day, opens)
);

-- One row per hold or booking on a unit: the window sold [starts_at,
-- ends_at) and the buffered window it guards [guard_from, guard_until), in
-- whole epoch seconds (the buffered window rounded outwards, so the guard is
-- never smaller than the booking's). Only `live` rows count; a hold that
-- leaves HELD/CONFIRMED stops counting through the trigger below.
--
-- The exclusion encoding: each unit owns the integer line segment
-- [unit_key * 2^32, (unit_key + 1) * 2^32), and a window is the segment
-- [unit_key * 2^32 + guard_from, unit_key * 2^32 + guard_until). With
-- 0 <= guard_from < guard_until <= 2^32 - 1 (1970-01-01 to 2106-02-07 UTC) a
-- window never leaves its unit's segment, so two ranges overlap exactly when
-- they are on the same unit and their buffered windows overlap; with
-- 0 < unit_key <= 2^31 - 1 the largest value, (2^31 - 1) * 2^32 + 2^32 - 1,
-- is 2^63 - 1 and fits a bigint. Half-open, so [19:00, 21:00) and
-- [21:00, 23:00) both fit.
CREATE TABLE unit_windows (
    tenant_id    text NOT NULL,
    hold_id      uuid NOT NULL,
    resource_id  uuid NOT NULL,
    unit_id      uuid NOT NULL,
    unit_key     integer NOT NULL,
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    guard_from   bigint NOT NULL,
    guard_until  bigint NOT NULL,
    live         boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hold_id, unit_id),
    FOREIGN KEY (tenant_id, hold_id) REFERENCES holds (tenant_id, id),
    FOREIGN KEY (tenant_id, unit_id) REFERENCES resource_units (tenant_id, id),
    FOREIGN KEY (unit_id, unit_key) REFERENCES resource_units (id, unit_key),
    CONSTRAINT unit_windows_time_order CHECK (starts_at < ends_at),
    CONSTRAINT unit_windows_guard_bounds
        CHECK (0 <= guard_from AND guard_from < guard_until AND guard_until <= 4294967295),
    CONSTRAINT unit_windows_guard_covers_window
        CHECK (to_timestamp(guard_from) <= starts_at AND ends_at <= to_timestamp(guard_until)),
    CONSTRAINT unit_windows_no_overlap EXCLUDE USING gist (
        int8range(unit_key::bigint * 4294967296 + guard_from,
                  unit_key::bigint * 4294967296 + guard_until, '[)') WITH &&
    ) WHERE (live)
);
-- What is taken on a resource's units over a range (availability, best unit).
CREATE INDEX unit_windows_resource_live_idx
    ON unit_windows (tenant_id, resource_id, starts_at) WHERE live;

-- A hold that is released, expires, is cancelled or refunded frees its
-- windows in the same statement, whichever code path moved it (the sweeper,
-- cancel, a late payment's refund), so no path can forget to.
CREATE FUNCTION unit_windows_follow_hold() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE unit_windows SET live = false, updated_at = now()
    WHERE hold_id = NEW.id AND live;
    RETURN NULL;
END;
$$;

CREATE TRIGGER holds_free_unit_windows
    AFTER UPDATE OF status ON holds
    FOR EACH ROW
    WHEN (NEW.status NOT IN ('HELD', 'CONFIRMED'))
    EXECUTE FUNCTION unit_windows_follow_hold();
