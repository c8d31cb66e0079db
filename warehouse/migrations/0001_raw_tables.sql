-- Raw event tables, one per event type; columns mirror schemas/clickhouse.py (a test compares them).
--
-- Idempotent under replay: ReplacingMergeTree collapses rows with equal sorting keys, and every
-- sorting key ends with the event's natural id.  Producers stamp id and ts once, so a re-delivered
-- event has the same (room_id, ts, id) and lands in the same day partition: query with FINAL (or
-- uniqExact of the id) for exact counts before background merges have run.
-- Orders are keyed by (room_id, sku_id, order_id) WITHOUT ts: order_id is the client's idempotency
-- key and a client retry may carry a new ts.  Sorting keys start with room_id then time, the shape
-- of every dashboard and report query.

CREATE TABLE IF NOT EXISTS {db}.comments (
    v UInt8,
    event_id String,
    room_id LowCardinality(String),
    user_id String,
    text String,
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, ts, event_id);

CREATE TABLE IF NOT EXISTS {db}.likes (
    v UInt8,
    event_id String,
    room_id LowCardinality(String),
    user_id Nullable(String),
    count UInt64,
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, ts, event_id);

CREATE TABLE IF NOT EXISTS {db}.presence (
    v UInt8,
    event_id String,
    room_id LowCardinality(String),
    user_id String,
    action LowCardinality(String),
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, ts, event_id);

CREATE TABLE IF NOT EXISTS {db}.sale_config (
    v UInt8,
    event_id String,
    room_id LowCardinality(String),
    sku_id LowCardinality(String),
    action LowCardinality(String),
    stock Nullable(UInt64),
    price_cents Nullable(UInt64),
    starts_at Nullable(DateTime64(3, 'UTC')),
    ends_at Nullable(DateTime64(3, 'UTC')),
    per_user_limit UInt64,
    reservation_ttl_s UInt64,
    title Nullable(String),
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, ts, event_id);

CREATE TABLE IF NOT EXISTS {db}.orders (
    v UInt8,
    order_id String,
    room_id LowCardinality(String),
    sku_id LowCardinality(String),
    user_id String,
    quantity UInt8,
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, sku_id, order_id);

CREATE TABLE IF NOT EXISTS {db}.payments (
    v UInt8,
    event_id String,
    order_id String,
    room_id LowCardinality(String),
    sku_id LowCardinality(String),
    user_id String,
    action LowCardinality(String),
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, ts, event_id);

-- One row per (order, status): an order is accepted once, then paid / cancelled / expired once.
-- ts is the version, so if the flash-sale job ever re-decides after a crash, the latest answer wins.
CREATE TABLE IF NOT EXISTS {db}.order_results (
    v UInt8,
    order_id String,
    room_id LowCardinality(String),
    sku_id LowCardinality(String),
    user_id String,
    status LowCardinality(String),
    reason LowCardinality(Nullable(String)),
    quantity UInt8,
    price_cents UInt64,
    reserved_until Nullable(DateTime64(3, 'UTC')),
    attempt_ts DateTime64(3, 'UTC'),
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(ts)
PARTITION BY toDate(attempt_ts)
ORDER BY (room_id, sku_id, order_id, status);

-- No id on the wire: the whole state is the key, so only a byte-identical re-delivery collapses.
CREATE TABLE IF NOT EXISTS {db}.stock_updates (
    v UInt8,
    room_id LowCardinality(String),
    sku_id LowCardinality(String),
    available UInt64,
    reserved UInt64,
    sold UInt64,
    total UInt64,
    price_cents UInt64,
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, sku_id, ts, available, reserved, sold, total, price_cents);

CREATE TABLE IF NOT EXISTS {db}.scored_comments (
    v UInt8,
    event_id String,
    room_id LowCardinality(String),
    user_id String,
    text String,
    label LowCardinality(String),
    score Float64,
    confidence Float64,
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, ts, event_id);

-- One snapshot per room and 1-second window; a recomputed snapshot (replay) replaces the older one.
CREATE TABLE IF NOT EXISTS {db}.room_counters (
    v UInt8,
    room_id LowCardinality(String),
    window_start DateTime64(3, 'UTC'),
    window_end DateTime64(3, 'UTC'),
    online UInt64,
    peak_online UInt64,
    unique_viewers UInt64,
    comments UInt64,
    likes UInt64,
    comments_total UInt64,
    likes_total UInt64,
    comments_60s UInt64,
    likes_60s UInt64,
    order_attempts UInt64,
    order_attempts_total UInt64,
    orders_accepted UInt64,
    orders_accepted_total UInt64,
    units_total UInt64,
    gmv_reserved_cents_total UInt64,
    gmv_paid_cents_total UInt64,
    gmv_paid_cents_60s UInt64,
    unique_buyers UInt64,
    conversion_rate Float64,
    gpm_cents Float64,
    sentiment_avg Nullable(Float64),
    negative_share Nullable(Float64),
    late_events UInt64,
    stock Map(String, Tuple(available UInt64, reserved UInt64, sold UInt64, total UInt64)),
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(ts)
PARTITION BY toDate(window_start)
ORDER BY (room_id, window_start);

CREATE TABLE IF NOT EXISTS {db}.alerts (
    v UInt8,
    alert_id String,
    room_id LowCardinality(String),
    kind LowCardinality(String),
    level LowCardinality(String),
    message String,
    value Float64,
    threshold Float64,
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, ts, alert_id);

-- A dead letter is identified by where the bad message sat; -1/-1 (unknown position) falls back
-- to the payload's hash.  ts is the rejection time, so it is not part of the key.
CREATE TABLE IF NOT EXISTS {db}.dead_letters (
    v UInt8,
    source_topic LowCardinality(String),
    partition Int64,
    offset Int64,
    key Nullable(String),
    payload String,
    reason String,
    error LowCardinality(String),
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (source_topic, partition, offset, cityHash64(payload));
