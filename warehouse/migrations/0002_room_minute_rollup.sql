-- Per room per minute rollup for dashboards and reports, fed by materialized views on the raw tables.
--
-- Each view writes only its own columns; the others default to 0 and AggregatingMergeTree folds
-- the partial rows of one (room_id, minute) together (sum, or max for the online peak).  Read it
-- with GROUP BY room_id, minute (sum / max), never row by row.
--
-- Views count every inserted row, so a replayed batch is counted twice and a batch whose insert
-- was cut by kill -9 may be missing: warehouse.rollups.rebuild_rollups recomputes this table from
-- the deduplicated raw tables.  Its SELECTs must stay equal to the views' (a test checks it).
-- Money is quantity * unit price_cents of the order result.

CREATE TABLE IF NOT EXISTS {db}.room_minute (
    room_id LowCardinality(String),
    minute DateTime('UTC'),
    comments SimpleAggregateFunction(sum, UInt64),
    likes SimpleAggregateFunction(sum, UInt64),
    order_attempts SimpleAggregateFunction(sum, UInt64),
    orders_accepted SimpleAggregateFunction(sum, UInt64),
    units_accepted SimpleAggregateFunction(sum, UInt64),
    gmv_reserved_cents SimpleAggregateFunction(sum, UInt64),
    orders_paid SimpleAggregateFunction(sum, UInt64),
    gmv_paid_cents SimpleAggregateFunction(sum, UInt64),
    scored_comments SimpleAggregateFunction(sum, UInt64),
    negative_comments SimpleAggregateFunction(sum, UInt64),
    sentiment_sum SimpleAggregateFunction(sum, Float64),
    online_peak SimpleAggregateFunction(max, UInt64)
) ENGINE = AggregatingMergeTree
PARTITION BY toDate(minute)
ORDER BY (room_id, minute);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.room_minute_comments_mv TO {db}.room_minute AS
SELECT room_id, toStartOfMinute(ts) AS minute, toUInt64(count()) AS comments
FROM {db}.comments
GROUP BY room_id, minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.room_minute_likes_mv TO {db}.room_minute AS
SELECT room_id, toStartOfMinute(ts) AS minute, toUInt64(sum(count)) AS likes
FROM {db}.likes
GROUP BY room_id, minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.room_minute_orders_mv TO {db}.room_minute AS
SELECT room_id, toStartOfMinute(ts) AS minute, toUInt64(count()) AS order_attempts
FROM {db}.orders
GROUP BY room_id, minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.room_minute_results_mv TO {db}.room_minute AS
SELECT
    room_id,
    toStartOfMinute(ts) AS minute,
    toUInt64(countIf(status = 'accepted')) AS orders_accepted,
    toUInt64(sumIf(quantity, status = 'accepted')) AS units_accepted,
    toUInt64(sumIf(quantity * price_cents, status = 'accepted')) AS gmv_reserved_cents,
    toUInt64(countIf(status = 'paid')) AS orders_paid,
    toUInt64(sumIf(quantity * price_cents, status = 'paid')) AS gmv_paid_cents
FROM {db}.order_results
GROUP BY room_id, minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.room_minute_sentiment_mv TO {db}.room_minute AS
SELECT
    room_id,
    toStartOfMinute(ts) AS minute,
    toUInt64(count()) AS scored_comments,
    toUInt64(countIf(label = 'negative')) AS negative_comments,
    toFloat64(sum(score)) AS sentiment_sum
FROM {db}.scored_comments
GROUP BY room_id, minute;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.room_minute_online_mv TO {db}.room_minute AS
SELECT room_id, toStartOfMinute(window_start) AS minute, toUInt64(max(online)) AS online_peak
FROM {db}.room_counters
GROUP BY room_id, minute;
