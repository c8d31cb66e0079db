"""The committed JSON Schema files are exactly what the event definitions produce, and they work."""

from __future__ import annotations

import json

import jsonschema
import pytest

from schemas import Comment, encode
from schemas.json_schema import JSON_DIR, WIRE_TYPES, rendered

TS = 1_767_225_600_000


def test_committed_schema_files_are_current() -> None:
    expected = rendered()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in JSON_DIR.glob("*.schema.json")}
    assert on_disk == expected, "run `python -m schemas.json_schema` and commit schemas/json/"


@pytest.mark.parametrize("tag", sorted(WIRE_TYPES))
def test_schema_file_is_a_valid_json_schema(tag: str) -> None:
    schema = json.loads((JSON_DIR / f"{tag}.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)


def test_a_valid_comment_passes_and_an_invalid_one_fails_the_exported_schema() -> None:
    schema = json.loads((JSON_DIR / "comment.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    good = json.loads(encode(Comment(event_id="e1", room_id="r1", user_id="u1", text="666", ts=TS)))
    assert not list(validator.iter_errors(good))
    bad = dict(good, ts="yesterday", extra=1)
    assert len(list(validator.iter_errors(bad))) >= 2
