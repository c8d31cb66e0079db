"""One settings object, read from LC_* variables with documented defaults."""

from __future__ import annotations

import pytest

from base.settings import Settings


def test_defaults_without_environment() -> None:
    s = Settings.from_env({})
    assert s.kafka_bootstrap == "127.0.0.1:19092"
    assert s.topic("orders") == "lc.orders"
    assert s.effective_clickhouse_dsn.startswith("chdb:///")


def test_environment_overrides_and_integers_are_parsed() -> None:
    s = Settings.from_env({"LC_PARTITIONS": "12", "LC_TOPIC_PREFIX": "prod.", "LC_CLICKHOUSE_DSN": "http://ch:8123"})
    assert s.partitions == 12
    assert s.topic("orders") == "prod.orders"
    assert s.effective_clickhouse_dsn == "http://ch:8123"


def test_bad_integer_names_the_variable() -> None:
    with pytest.raises(ValueError, match="LC_PARTITIONS must be a number"):
        Settings.from_env({"LC_PARTITIONS": "many"})


def test_floats_are_parsed_and_bad_ones_name_the_variable() -> None:
    s = Settings.from_env({"LC_GATEWAY_FLUSH_INTERVAL_S": "0.5", "LC_GATEWAY_ACTION_BURST": "7"})
    assert s.gateway_flush_interval_s == 0.5 and isinstance(s.gateway_flush_interval_s, float)
    assert s.gateway_action_burst == 7
    with pytest.raises(ValueError, match="LC_GATEWAY_MAX_BEHIND_S must be a number"):
        Settings.from_env({"LC_GATEWAY_MAX_BEHIND_S": "soon"})


def test_every_setting_is_documented_with_a_unique_lc_variable() -> None:
    docs = Settings.documented()
    names = [env for env, _, _ in docs]
    assert len(names) == len(set(names))
    assert all(env.startswith("LC_") and doc for env, _, doc in docs)


def test_as_env_round_trips() -> None:
    s = Settings.from_env({"LC_GATEWAY_PORT": "9999", "LC_LOG_FORMAT": "console"})
    assert Settings.from_env(s.as_env()) == s


def test_report_and_benchmark_split_streams_at_the_gap_the_sinks_reports_use() -> None:
    """``report`` and ``benchmark`` without ``--gap-minutes`` tell streams apart as the sink's
    automatic reports do (LC_STREAM_GAP_S); 0 there turns the automatic reports off, not the gap."""
    import argparse

    from livecommerce.commands.report import gap_ms_of

    no_flag = argparse.Namespace(gap_minutes=None)
    assert gap_ms_of(no_flag, Settings.from_env({"LC_STREAM_GAP_S": "600"})) == 600_000
    assert gap_ms_of(no_flag, Settings.from_env({"LC_STREAM_GAP_S": "0"})) == 1_800_000
    assert gap_ms_of(argparse.Namespace(gap_minutes=5), Settings.from_env({"LC_STREAM_GAP_S": "600"})) == 300_000
