-- What a windowed resource's price is for: a period of a window (an hour, a
-- night), every started period counting whole, or, with 0, the booking as a
-- whole (a table's deposit). The hold snapshots the total it computes, as a
-- slotted hold snapshots its lines' prices.
ALTER TABLE resource_window_rules
    ADD COLUMN price_period_minutes integer NOT NULL DEFAULT 0 CHECK (price_period_minutes >= 0);
