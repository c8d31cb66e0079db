"""``GET /reports/<room>/`` and ``/reports/<room>/<stream_id>.html``: the reports of ended streams.

The sink, which owns the store, writes them into ``<data_dir>/reports/<room>/`` when a stream ends
(:mod:`analytics.autoreport`); the gateway only reads files, so serving a report never touches the
store.  Who may read what is decided in :mod:`ws_gateway.auth` (:func:`report_route`,
:func:`authorize_report`); the token comes as ``?token=`` (what the dashboard's page has) or as
``Authorization: Bearer``.  This module is the small file-reading shell around those decisions.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from schemas.base import is_file_id
from ws_gateway.auth import AuthError, authorize_report, http_status, report_route, verify_token

TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
JSON = "application/json"


def report_ids(names: Iterable[str]) -> list[str]:
    """The stream ids of the report files among ``names``, newest first (ids are ISO minutes, so
    they sort by time); temp files of a write in progress are hidden and never listed."""
    ids = (name.removesuffix(".html") for name in names if name.endswith(".html"))
    return sorted((i for i in ids if is_file_id(i)), reverse=True)


def report_response(reports_dir: Path, secret: str, path: str, token: str | None,
                    now_s: int) -> tuple[int, str, str]:
    """(HTTP status, body, content type) of a ``/reports/...`` request."""
    route = report_route(path)
    if route is None:
        return 404, "not found\n", TEXT
    try:
        authorize_report(verify_token(secret, token, now_s=now_s), route.room)
    except AuthError as exc:
        return http_status(exc), f"{exc.reason}\n", TEXT
    room_dir = reports_dir / route.room
    if route.stream_id is None:
        try:
            names = [p.name for p in room_dir.iterdir() if p.is_file()]
        except FileNotFoundError:
            names = []
        body = {"room": route.room,
                "reports": [{"stream_id": i, "path": f"/reports/{route.room}/{i}.html"} for i in report_ids(names)]}
        return 200, json.dumps(body), JSON
    try:
        return 200, (room_dir / f"{route.stream_id}.html").read_text(encoding="utf-8"), HTML
    except FileNotFoundError:
        return 404, f"no report {route.stream_id} for room {route.room}\n", TEXT
