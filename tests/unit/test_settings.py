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
