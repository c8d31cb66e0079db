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
    rows = [line for line in README.splitlines() if line.startswith("| `")]
    for spec in TOPICS.values():  # the topic and its key on the SAME row of the topics table
        assert any(row.startswith(f"| `{spec.name}` |") and f"| `{spec.key_field}` |" in row for row in rows), spec.name


def test_the_readme_links_only_to_files_in_the_repository() -> None:
    import re

    root = Path(__file__).resolve().parents[2]
    for target in re.findall(r"\]\(([^)#]+)\)", README):
        if not target.startswith(("http://", "https://")):
            assert (root / target).exists(), target
