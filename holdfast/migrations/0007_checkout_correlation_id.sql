-- The correlation id of the request that started a payment attempt, sent in
-- the session's metadata next to its traceparent: the webhook's processing
-- carries on under the id the customer's request had. Fixed with the other
-- parameters when the attempt starts.
ALTER TABLE checkouts ADD COLUMN correlation_id text NOT NULL DEFAULT '';
