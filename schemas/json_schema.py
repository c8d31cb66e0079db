"""JSON Schema export of every wire type, for producers that are not written in Python.

``python -m schemas.json_schema`` rewrites ``schemas/json/<type>.schema.json``; a test fails when
the committed files differ from what the Structs produce, so the files never drift.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from schemas.console import UNSTORED_TYPES
from schemas.events import EVENT_TYPES

#: Every type with a JSON Schema: the stored events and the views carried on a topic only.
WIRE_TYPES = {**EVENT_TYPES, **UNSTORED_TYPES}

JSON_DIR = Path(__file__).with_name("json")


def schema_of(tag: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of one event type, by its tag."""
    body = msgspec.json.schema(WIRE_TYPES[tag])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"livecommerce/{tag}.schema.json",
        **body,
    }


def rendered() -> dict[str, str]:
    """File name -> file text of every schema."""
    return {
        f"{tag}.schema.json": json.dumps(schema_of(tag), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
        for tag in sorted(WIRE_TYPES)
    }


def write(directory: Path = JSON_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in rendered().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write():
        print(p, file=sys.stderr)
