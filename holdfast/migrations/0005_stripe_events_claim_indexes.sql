-- The processor's claim walks the events still to apply in Stripe's order and
-- skips any whose object has an earlier one still to apply. Without these,
-- each claim compared every waiting event with every other (measured: 7.8 ms
-- per claim with 2000 waiting, and seconds when the planner chose a nested
-- scan), so a burst of webhooks queued for seconds.
CREATE INDEX stripe_events_unapplied_order_idx ON stripe_events (created_at, event_id)
    WHERE status IN ('PENDING', 'FAILED');
CREATE INDEX stripe_events_unapplied_object_idx ON stripe_events (object_id, created_at, event_id)
    WHERE status IN ('PENDING', 'FAILED');
