"""The README documents every setting and every topic (any Kafka client must be able to feed the system)."""

from __future__ import annotations

from pathlib import Path

from base.settings import Settings
from schemas import TOPICS

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme() -> None:
    missing = [env for env, _, _ in Settings.documented() if f"`{env}`" not in README]
    assert not missing


def test_every_topic_with_its_key_is_in_the_readme() -> None:
    for spec in TOPICS.values():
        assert f"| `{spec.name}` |" in README and f"| `{spec.key_field}` |" in README, spec.name
