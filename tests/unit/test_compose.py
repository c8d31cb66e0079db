"""docker-compose.yml cannot run here (no Docker engine), so check that it speaks the settings' language."""

from __future__ import annotations

import re
from pathlib import Path

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
