"""Who may read the reports of ended streams, and that a URL never leaves the reports directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.base import is_file_id
from ws_gateway.auth import AuthError, Claims, ReportRoute, authorize_report, mint_token, report_route
from ws_gateway.reports import report_ids, report_response

SECRET = "test-secret-of-at-least-32-bytes-long!"
NOW = 1_800_000_000


def claims(role: str, room: str | None) -> Claims:
    return Claims(sub="u1", role=role, room=room, exp=NOW + 60)  # type: ignore[arg-type]


def test_routes() -> None:
    assert report_route("/reports/room-1/") == ReportRoute("room-1", None)
    assert report_route("/reports/room-1/2026-01-01T00:00Z.html") == ReportRoute("room-1", "2026-01-01T00:00Z")
    for bad in ("/reports/", "/reports/room-1", "/reports/../", "/reports/room-1/../../etc/passwd",
                "/reports/room-1/..html", "/reports/room-1/...html", "/reports/room-1/x.txt", "/reports/r/a/b.html",
                "/reports/%2e%2e/", "/reports/room-1/%2e%2e%2fx.html", "/reports/.hidden/", "/report/room-1/",
                "/reports/room-1/.s.html.12.tmp"):
        assert report_route(bad) is None, bad


@given(st.text(alphabet="ab./%:-_\\", max_size=30), st.text(alphabet="ab./%:-_\\", max_size=30))
def test_a_route_only_ever_names_safe_ids(room: str, name: str) -> None:
    route = report_route(f"/reports/{room}/{name}")
    if route is not None:
        assert is_file_id(route.room) and ".." not in Path(route.room).parts
        assert route.stream_id is None or (is_file_id(route.stream_id) and "/" not in route.stream_id)


def test_the_room_host_and_ops_may_read_viewers_and_other_hosts_may_not() -> None:
    authorize_report(claims("host", "r1"), "r1")
    authorize_report(claims("ops", None), "r1")
    with pytest.raises(AuthError):
        authorize_report(claims("viewer", "r1"), "r1")
    with pytest.raises(AuthError):
        authorize_report(claims("host", "r2"), "r1")


def test_only_report_files_are_listed_newest_first() -> None:
    names = ["2026-01-01T00:00Z.html", "2026-01-02T10:30Z.html", ".2026-01-03T00:00Z.html.7.tmp", "notes.txt",
             "..html"]
    assert report_ids(names) == ["2026-01-02T10:30Z", "2026-01-01T00:00Z"]


def token(role: str, room: str | None) -> str:
    return mint_token(SECRET, sub="u1", role=role, room=room, now_s=NOW)  # type: ignore[arg-type]


def test_responses(tmp_path: Path) -> None:
    (tmp_path / "r1").mkdir()
    (tmp_path / "r1" / "2026-01-01T00:00Z.html").write_text("<html>report</html>")
    (tmp_path / "secret.html").write_text("outside")

    def get(path: str, tok: str | None) -> tuple[int, str]:
        status, body, _ = report_response(tmp_path, SECRET, path, tok, NOW)
        return status, body

    status, body = get("/reports/r1/", token("host", "r1"))
    assert status == 200 and json.loads(body)["reports"] == [
        {"stream_id": "2026-01-01T00:00Z", "path": "/reports/r1/2026-01-01T00:00Z.html"}]
    assert get("/reports/r1/2026-01-01T00:00Z.html", token("ops", None)) == (200, "<html>report</html>")
    assert get("/reports/r1/2026-01-01T00:00Z.html", token("viewer", "r1"))[0] == 403
    assert get("/reports/r1/2026-01-01T00:00Z.html", token("host", "r2"))[0] == 403
    assert get("/reports/r1/2026-01-01T00:00Z.html", None)[0] == 401
    assert get("/reports/r1/2026-01-01T00:00Z.html", "garbage")[0] == 401
    assert get("/reports/r1/2026-01-02T00:00Z.html", token("host", "r1"))[0] == 404
    assert get("/reports/r1/../secret.html", token("ops", None))[0] == 404
    assert get("/reports/../secret.html", token("ops", None))[0] == 404
    assert json.loads(get("/reports/r9/", token("host", "r9"))[1])["reports"] == []
