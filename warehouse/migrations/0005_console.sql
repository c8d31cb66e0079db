-- The streamer's console: traffic source on joins, the product funnel (impressions, clicks), follows,
-- shares, the host's actions (audit trail) and each room's benchmark.  Columns mirror
-- schemas/clickhouse.py (a test compares them).
--
-- Like 0001: ReplacingMergeTree on (room_id, time, natural id) so a replayed batch collapses, and
-- day partitions.  Impressions are the biggest of these tables (one row per product shown to a
-- viewer); sku_id comes right after room_id in their key and the clicks' because every funnel query
-- groups by SKU.  Version 0004 is left to a concurrent change of the raw tables.

ALTER TABLE {db}.presence
    ADD COLUMN IF NOT EXISTS source LowCardinality(Nullable(String)) AFTER action,
    ADD COLUMN IF NOT EXISTS is_follower Nullable(Bool) AFTER source;

CREATE TABLE IF NOT EXISTS {db}.impressions (
    v UInt8,
    event_id String,
    room_id LowCardinality(String),
    sku_id LowCardinality(String),
    user_id String,
    placement LowCardinality(String),
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, sku_id, ts, event_id);

CREATE TABLE IF NOT EXISTS {db}.product_clicks (
    v UInt8,
    event_id String,
    room_id LowCardinality(String),
    sku_id LowCardinality(String),
    user_id String,
    placement LowCardinality(String),
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, sku_id, ts, event_id);

CREATE TABLE IF NOT EXISTS {db}.follows (
    v UInt8,
    event_id String,
    room_id LowCardinality(String),
    user_id String,
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, ts, event_id);

CREATE TABLE IF NOT EXISTS {db}.shares (
    v UInt8,
    event_id String,
    room_id LowCardinality(String),
    user_id String,
    channel LowCardinality(String),
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, ts, event_id);

-- The audit trail: kept whole (no TTL); host_id is the host's account, not pseudonymised.
CREATE TABLE IF NOT EXISTS {db}.host_actions (
    v UInt8,
    event_id String,
    room_id LowCardinality(String),
    host_id String,
    action LowCardinality(String),
    sku_id LowCardinality(String),
    stock Nullable(UInt64),
    price_cents Nullable(UInt64),
    starts_at Nullable(DateTime64(3, 'UTC')),
    ends_at Nullable(DateTime64(3, 'UTC')),
    per_user_limit Nullable(UInt64),
    reservation_ttl_s Nullable(UInt64),
    title Nullable(String),
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, ts, event_id);

-- One row per published benchmark; the latest per room is argMax(..., ts).
CREATE TABLE IF NOT EXISTS {db}.room_benchmarks (
    v UInt8,
    room_id LowCardinality(String),
    streams UInt64,
    since DateTime64(3, 'UTC'),
    avg_online Nullable(Float64),
    avg_watch_ms Nullable(Float64),
    ctr Nullable(Float64),
    conversion_rate Nullable(Float64),
    gpm_cents Nullable(Float64),
    gmv_per_minute_cents Nullable(Float64),
    follow_rate Nullable(Float64),
    comments_per_viewer Nullable(Float64),
    ts DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (room_id, ts);
