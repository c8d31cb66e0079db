-- One row per ClickHouse sink worker: whether its last run ended cleanly.  A run that starts and
-- finds `clean = 0` follows a crash (kill -9): the rollup may miss a batch that the raw tables
-- hold, or count a replayed batch twice, so the sink rebuilds it once it has caught up.
CREATE TABLE IF NOT EXISTS {db}.sink_runs (
    sink_id String,
    clean UInt8,
    at DateTime64(3, 'UTC')
) ENGINE = ReplacingMergeTree(at)
ORDER BY sink_id;
