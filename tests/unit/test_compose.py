"""docker-compose.yml cannot run here (no Docker engine), so check that it speaks the settings' language."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from base.settings import Settings
from livecommerce.commands.worker import JOBS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")


def test_every_lc_variable_in_compose_is_a_setting() -> None:
    used = set(re.findall(r"\b(LC_[A-Z_]+)\s*:", COMPOSE))
    known = {env for env, _, _ in Settings.documented()}
    assert used, "compose sets no LC_* variables"
    assert used <= known, f"unknown settings in docker-compose.yml: {sorted(used - known)}"


def test_compose_sets_the_settings_that_differ_in_production() -> None:
    for env in ("LC_KAFKA_BOOTSTRAP", "LC_CLICKHOUSE_DSN", "LC_JWT_SECRET", "LC_PSEUDONYM_SECRET"):
        assert re.search(rf"\b{env}\s*:", COMPOSE), env


def test_compose_runs_every_worker_job() -> None:
    for job in JOBS:
        assert f'["worker", "{job}"]' in COMPOSE, job


def _compose() -> dict[str, Any]:
    import yaml  # pinned in constraints.txt (a dependency of the model tooling)

    loaded: dict[str, Any] = yaml.safe_load(COMPOSE)
    return loaded


def _kafka_services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"].items()
    return {name: svc for name, svc in services if str(svc.get("image", "")).startswith("apache/kafka:")}


def test_compose_runs_three_kraft_brokers_that_form_one_quorum() -> None:
    brokers = _kafka_services()
    assert len(brokers) == 3
    envs = {name: svc["environment"] for name, svc in brokers.items()}
    assert sorted(env["KAFKA_NODE_ID"] for env in envs.values()) == ["1", "2", "3"]
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in envs.values()}
    assert len(voters) == 1, "every node must name the same voters"
    expected = sorted(f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in envs.items())
    assert sorted(voters.pop().split(",")) == expected
    for name, env in envs.items():
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{name}:9092"
    app_env = _compose()["x-app-env"]
    assert sorted(app_env["LC_KAFKA_BOOTSTRAP"].split(",")) == sorted(f"{name}:9092" for name in brokers)


def test_compose_brokers_replicate_like_the_local_three_node_cluster() -> None:
    """The production brokers and `livecommerce up --brokers 3` must agree on durability: RF 3, min ISR 2,
    transaction and offsets topics replicated 3 times, unclean leader election off."""
    from base.broker import server_properties

    local = server_properties("/d", 1, 2, 1, [(1, 2), (2, 4), (3, 6)])
    keys = ["default.replication.factor", "min.insync.replicas", "unclean.leader.election.enable",
            "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
            "transaction.state.log.min.isr", "auto.create.topics.enable", "broker.session.timeout.ms",
            "broker.heartbeat.interval.ms"]
    for env in (svc["environment"] for svc in _kafka_services().values()):
        for key in keys:
            assert env["KAFKA_" + key.upper().replace(".", "_")] == local[key], key
    assert local["min.insync.replicas"] == "2" and local["default.replication.factor"] == "3"
    assert _compose()["x-app-env"]["LC_REPLICATION_FACTOR"] == local["default.replication.factor"]
