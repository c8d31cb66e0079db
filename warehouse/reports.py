"""The post-stream report's queries: one room, one time window, plain rows out.

Every query is parameterised (``{room:String}``, ``{t0:Int64}`` ...): the room id and the window
come from the command line and never enter the SQL text.  Only the database name is put into the
text, after :func:`warehouse.migrate.render` validated it as an identifier.

Why these shapes:

* raw tables are read ``FINAL`` so that a replayed batch (at-least-once delivery into
  ReplacingMergeTree) counts once even before background merges ran; the sorting keys start with
  ``room_id`` and time, so the room and window filters prune by primary key;
* each raw table is scanned once, grouped by minute (or SKU, or user); totals are sums of those
  groups in :mod:`analytics.core`, so a total and its per-minute table can never disagree;
* order results belong to the window of their *attempt* (``attempt_ts``, also their partition
  key): an order attempted in the stream and expired two minutes after it still counts for it;
* times go out as epoch milliseconds (``toUnixTimestamp64Milli``) so that no timezone conversion
  happens on the way to Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from warehouse.migrate import render

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

#: Time filter on a raw table's event time, [t0, t1) in epoch ms.
_IN_WINDOW = "room_id = {room:String} AND {col} >= fromUnixTimestamp64Milli({t0:Int64}) " \
             "AND {col} < fromUnixTimestamp64Milli({t1:Int64})"


@dataclass(frozen=True)
class Window:
    """One room over ``[start_ms, end_ms)``."""

    room_id: str
    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        if self.end_ms <= self.start_ms:
            raise ValueError("window end must be after its start")

    @property
    def params(self) -> dict[str, Any]:
        return {"room": self.room_id, "t0": self.start_ms, "t1": self.end_ms}


class ReportQueries:
    """The report's queries against one database (``database`` defaults to the client's)."""

    def __init__(self, client: Client, database: str | None = None) -> None:
        name = database or client.database
        if not name:
            raise ValueError("no database given and the client has no default database")
        self.client = client
        self.db = render("{db}", str(name))

    # ------------------------------------------------------------------ helpers

    def _where(self, col: str = "ts") -> str:
        return _IN_WINDOW.replace("{col}", col)

    def _rows(self, sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
        return list(self.client.query(sql, parameters=params).result_rows)

    # ------------------------------------------------------------------ streams

    def activity_minutes(self, room: str) -> list[tuple[int, int]]:
        """(minute start ms, events) of every minute with viewer activity in ``room``, ascending.

        Comments, likes and order attempts come from the per-minute rollup (small), presence from its
        raw table (not in the rollup).  No FINAL: a duplicate changes a count, not whether a minute
        was active, so a rollup that missed or doubled a batch still finds the same streams.
        """
        sql = (
            "SELECT minute, sum(n) FROM ("
            " SELECT toUnixTimestamp(minute) * 1000 AS minute, sum(comments + likes + order_attempts) AS n"
            f" FROM {self.db}.room_minute WHERE room_id = {{room:String}} GROUP BY minute"
            " UNION ALL"
            " SELECT toUnixTimestamp(toStartOfMinute(ts)) * 1000 AS minute, count() AS n"
            f" FROM {self.db}.presence WHERE room_id = {{room:String}} GROUP BY minute"
            ") GROUP BY minute HAVING sum(n) > 0 ORDER BY minute"
        )
        return [(int(m), int(n)) for m, n in self._rows(sql, {"room": room})]

    def last_active(self, since_ms: int) -> dict[str, int]:
        """Room -> start (ms) of its last minute with viewer activity at or after ``since_ms``: the
        same minutes as :meth:`activity_minutes`, for every room in one query (the sink asks it every
        few seconds to find the streams that have ended)."""
        sql = (
            "SELECT room_id, max(minute) FROM ("
            " SELECT room_id, toUnixTimestamp(minute) * 1000 AS minute"
            f" FROM {self.db}.room_minute WHERE minute >= toDateTime(intDiv({{since:Int64}}, 1000), 'UTC')"
            " GROUP BY room_id, minute HAVING sum(comments + likes + order_attempts) > 0"
            " UNION ALL"
            " SELECT room_id, toUnixTimestamp(toStartOfMinute(max(ts))) * 1000 AS minute"
            f" FROM {self.db}.presence WHERE ts >= fromUnixTimestamp64Milli({{since:Int64}}) GROUP BY room_id"
            ") GROUP BY room_id"
        )
        return {str(room): int(minute) for room, minute in self._rows(sql, {"since": since_ms})}

    # ------------------------------------------------------------------ audience

    def presence_seconds(self, w: Window) -> list[tuple[int, int, int, int, int]]:
        """(second start ms, joins, leaves, first ts, last ts) of every second with presence, ascending."""
        sql = (
            "SELECT intDiv(toUnixTimestamp64Milli(ts), 1000) * 1000 AS sec, "
            "countIf(action = 'join'), countIf(action = 'leave'), "
            "toUnixTimestamp64Milli(min(ts)), toUnixTimestamp64Milli(max(ts)) "
            f"FROM {self.db}.presence FINAL WHERE {self._where()} GROUP BY sec ORDER BY sec"
        )
        return [tuple(int(x) for x in row) for row in self._rows(sql, w.params)]  # type: ignore[misc]

    def viewers(self, w: Window, span_end_ms: int) -> tuple[int, int, int]:
        """(unique viewers, viewers already present at the window start, total watch time in ms).

        Watch time per viewer: sum of leave times minus sum of join times, minus the window start for
        a viewer seen before their first join (watching when the window opened), plus ``span_end_ms``
        for one seen after their last leave (still watching at the end).  Plain min/max aggregates:
        ``argMin`` over (ts, action) tuples was 5x slower on 1 M presence rows.
        """
        sql = (
            "SELECT count(), sum(open_start), sum(watch) FROM ("
            " SELECT user_id,"
            "  countIf(action = 'join') = 0 OR minIf(ts, action = 'join') > min(ts) AS open_start,"
            "  countIf(action = 'leave') = 0 OR maxIf(ts, action = 'leave') < max(ts) AS open_end,"
            "  toInt64(sumIf(toUnixTimestamp64Milli(ts), action = 'leave'))"
            "   - toInt64(sumIf(toUnixTimestamp64Milli(ts), action = 'join'))"
            "   - open_start * {t0:Int64} + open_end * {end:Int64} AS watch"
            f" FROM {self.db}.presence FINAL WHERE {self._where()} GROUP BY user_id)"
        )
        n, open_start, watch = self._rows(sql, {**w.params, "end": span_end_ms})[0]
        return int(n), int(open_start or 0), int(watch or 0)

    # ------------------------------------------------------------------ per-minute facts

    def comment_minutes(self, w: Window) -> list[tuple[int, int, int, int]]:
        """(minute ms, comments, first ts, last ts) per minute; likes and orders alike."""
        sql = (
            "SELECT toUnixTimestamp(toStartOfMinute(ts)) * 1000 AS m, count(), "
            "toUnixTimestamp64Milli(min(ts)), toUnixTimestamp64Milli(max(ts)) "
            f"FROM {self.db}.comments FINAL WHERE {self._where()} GROUP BY m ORDER BY m"
        )
        return [(int(m), int(n), int(a), int(b)) for m, n, a, b in self._rows(sql, w.params)]

    def like_minutes(self, w: Window) -> list[tuple[int, int, int, int]]:
        sql = (
            "SELECT toUnixTimestamp(toStartOfMinute(ts)) * 1000 AS m, sum(count), "
            "toUnixTimestamp64Milli(min(ts)), toUnixTimestamp64Milli(max(ts)) "
            f"FROM {self.db}.likes FINAL WHERE {self._where()} GROUP BY m ORDER BY m"
        )
        return [(int(m), int(n), int(a), int(b)) for m, n, a, b in self._rows(sql, w.params)]

    def order_minutes(self, w: Window) -> list[tuple[int, int, int, int]]:
        """Distinct order ids (attempts) by the minute of their first attempt."""
        sql = (
            "SELECT toUnixTimestamp(toStartOfMinute(ts)) * 1000 AS m, count(), "
            "toUnixTimestamp64Milli(min(ts)), toUnixTimestamp64Milli(max(ts)) "
            f"FROM {self.db}.orders FINAL WHERE {self._where()} GROUP BY m ORDER BY m"
        )
        return [(int(m), int(n), int(a), int(b)) for m, n, a, b in self._rows(sql, w.params)]

    def result_minutes(self, w: Window) -> list[tuple[int, int, int, int, int, int, int, int]]:
        """Per minute of the result's time: accepted, units, GMV reserved, paid, GMV paid, cancelled,
        expired (orders attempted in the window)."""
        sql = (
            "SELECT toUnixTimestamp(toStartOfMinute(ts)) * 1000 AS m, "
            "countIf(status = 'accepted'), sumIf(quantity, status = 'accepted'), "
            "sumIf(quantity * price_cents, status = 'accepted'), countIf(status = 'paid'), "
            "sumIf(quantity * price_cents, status = 'paid'), countIf(status = 'cancelled'), "
            "countIf(status = 'expired') "
            f"FROM {self.db}.order_results FINAL WHERE {self._where('attempt_ts')} GROUP BY m ORDER BY m"
        )
        return [tuple(int(x) for x in row) for row in self._rows(sql, w.params)]  # type: ignore[misc]

    def sentiment_minutes(self, w: Window) -> list[tuple[int, int, int, int, float]]:
        """Per minute: scored comments, positive, negative, sum of scores."""
        sql = (
            "SELECT toUnixTimestamp(toStartOfMinute(ts)) * 1000 AS m, count(), countIf(label = 'positive'), "
            "countIf(label = 'negative'), sum(score) "
            f"FROM {self.db}.scored_comments FINAL WHERE {self._where()} GROUP BY m ORDER BY m"
        )
        return [(int(m), int(n), int(p), int(ng), float(s)) for m, n, p, ng, s in self._rows(sql, w.params)]

    # ------------------------------------------------------------------ people

    def people(self, w: Window) -> dict[str, int]:
        """Distinct commenters, order attempters, buyers (accepted), paying buyers, multi-order buyers
        (two or more accepted orders) and returning buyers (accepted before the window too)."""
        commenters = self._rows(
            f"SELECT uniqExact(user_id) FROM {self.db}.comments WHERE {self._where()}", w.params
        )[0][0]
        attempters = self._rows(
            f"SELECT uniqExact(user_id) FROM {self.db}.orders WHERE {self._where()}", w.params
        )[0][0]
        sql = (
            "SELECT countIf(accepted > 0), countIf(paid > 0), countIf(accepted > 1), "
            "countIf(accepted > 0 AND user_id IN ("
            f"  SELECT user_id FROM {self.db}.order_results WHERE room_id = {{room:String}}"
            "   AND attempt_ts < fromUnixTimestamp64Milli({t0:Int64}) AND status = 'accepted')) "
            "FROM (SELECT user_id, countIf(status = 'accepted') AS accepted, countIf(status = 'paid') AS paid "
            f"      FROM {self.db}.order_results FINAL WHERE {self._where('attempt_ts')} GROUP BY user_id)"
        )
        buyers, payers, multi, returning = self._rows(sql, w.params)[0]
        return {
            "commenters": int(commenters),
            "attempters": int(attempters),
            "buyers": int(buyers),
            "paying_buyers": int(payers),
            "multi_order_buyers": int(multi),
            "returning_buyers": int(returning),
        }

    # ------------------------------------------------------------------ SKUs

    def sku_outcomes(self, w: Window) -> list[tuple[str, str, str, int, int, int]]:
        """(sku, status, reason or '', orders, units, cents) of orders attempted in the window."""
        sql = (
            "SELECT sku_id, status, ifNull(reason, ''), count(), sum(quantity), sum(quantity * price_cents) "
            f"FROM {self.db}.order_results FINAL WHERE {self._where('attempt_ts')} "
            "GROUP BY sku_id, status, reason ORDER BY sku_id, status, reason"
        )
        return [(str(s), str(st), str(r), int(n), int(u), int(c)) for s, st, r, n, u, c in self._rows(sql, w.params)]

    def sku_attempts(self, w: Window) -> list[tuple[str, int]]:
        sql = (
            f"SELECT sku_id, count() FROM {self.db}.orders FINAL WHERE {self._where()} "
            "GROUP BY sku_id ORDER BY sku_id"
        )
        return [(str(s), int(n)) for s, n in self._rows(sql, w.params)]

    def sku_configs(self, w: Window) -> list[tuple[str, str, int, int, int, int, str]]:
        """(sku, action, stock, price, starts_at ms, ends_at ms, title) of sale configs in the window, by time."""
        sql = (
            "SELECT sku_id, action, ifNull(stock, 0), ifNull(price_cents, 0), "
            "ifNull(toUnixTimestamp64Milli(starts_at), 0), ifNull(toUnixTimestamp64Milli(ends_at), 0), "
            f"ifNull(title, '') FROM {self.db}.sale_config FINAL WHERE {self._where()} ORDER BY ts, event_id"
        )
        return [
            (str(s), str(a), int(st), int(p), int(b), int(e), str(t))
            for s, a, st, p, b, e, t in self._rows(sql, w.params)
        ]

    def sold_out_at(self, w: Window) -> dict[str, int]:
        """SKU -> first time (ms) its stock update showed nothing available, for SKUs that sold out."""
        sql = (
            "SELECT sku_id, toUnixTimestamp64Milli(min(ts)) "
            f"FROM {self.db}.stock_updates WHERE {self._where()} AND available = 0 AND total > 0 GROUP BY sku_id"
        )
        return {str(s): int(t) for s, t in self._rows(sql, w.params)}

    # ------------------------------------------------------------------ comments

    def top_comments(self, w: Window, label: str, limit: int) -> list[tuple[int, str, str, float]]:
        """(ts ms, pseudonymous user, text, score) of the ``limit`` strongest ``label`` comments.

        One query per label: ``ORDER BY ... LIMIT n`` keeps a top-n heap, whereas one query with
        ``LIMIT n BY label`` sorted every comment (20x slower on 2 M comments)."""
        order = "score DESC" if label == "positive" else "score ASC"
        sql = (
            "SELECT toUnixTimestamp64Milli(ts), user_id, text, score "
            f"FROM {self.db}.scored_comments FINAL WHERE {self._where()} AND label = {{label:String}} "
            f"ORDER BY {order}, confidence DESC, ts, event_id LIMIT {{limit:UInt32}}"
        )
        rows = self._rows(sql, {**w.params, "label": label, "limit": limit})
        return [(int(t), str(u), str(x), float(sc)) for t, u, x, sc in rows]

    def comment_texts(self, w: Window, limit: int) -> tuple[list[tuple[str, int]], int]:
        """The ``limit`` most frequent distinct comment texts with their counts, and the number of
        distinct texts (hot words are exact when that is at most ``limit``)."""
        sql = (
            "SELECT text, count() AS n, count() OVER () "
            f"FROM {self.db}.comments FINAL WHERE {self._where()} GROUP BY text "
            "ORDER BY n DESC, text LIMIT {limit:UInt32}"
        )
        rows = self._rows(sql, {**w.params, "limit": limit})
        distinct = int(rows[0][2]) if rows else 0
        return [(str(t), int(n)) for t, n, _ in rows], distinct

    # ------------------------------------------------------------------ risk

    def alerts(self, w: Window, limit: int) -> tuple[list[tuple[int, str, str, str, float, float]], int]:
        """The first ``limit`` alerts (ts ms, kind, level, message, value, threshold) and the total."""
        sql = (
            "SELECT toUnixTimestamp64Milli(ts), kind, level, message, value, threshold, count() OVER () "
            f"FROM {self.db}.alerts FINAL WHERE {self._where()} ORDER BY ts, alert_id LIMIT {{limit:UInt32}}"
        )
        rows = self._rows(sql, {**w.params, "limit": limit})
        total = int(rows[0][6]) if rows else 0
        return [(int(t), str(k), str(lv), str(m), float(v), float(th)) for t, k, lv, m, v, th, _ in rows], total

    def alert_kinds(self, w: Window) -> list[tuple[str, str, int]]:
        sql = (
            f"SELECT kind, level, count() FROM {self.db}.alerts FINAL WHERE {self._where()} "
            "GROUP BY kind, level ORDER BY count() DESC, kind"
        )
        return [(str(k), str(lv), int(n)) for k, lv, n in self._rows(sql, w.params)]

    # ------------------------------------------------------------------ the console's events

    #: Tables counted per minute by :meth:`console_minutes`, with the filter that selects the rows.
    CONSOLE_MINUTE_SOURCES: tuple[tuple[str, str, str], ...] = (
        ("entries", "presence", "action = 'join'"),
        ("impressions", "impressions", "1"),
        ("clicks", "product_clicks", "1"),
        ("follows", "follows", "1"),
        ("shares", "shares", "1"),
    )

    def console_minutes(self, w: Window) -> dict[str, list[tuple[int, int]]]:
        """Per minute: joins (entries), product impressions, clicks, follows, shares."""
        out: dict[str, list[tuple[int, int]]] = {}
        for name, table, cond in self.CONSOLE_MINUTE_SOURCES:
            sql = (
                "SELECT toUnixTimestamp(toStartOfMinute(ts)) * 1000 AS m, count() "
                f"FROM {self.db}.{table} FINAL WHERE {self._where()} AND {cond} GROUP BY m ORDER BY m"
            )
            out[name] = [(int(m), int(n)) for m, n in self._rows(sql, w.params)]
        return out

    def sku_funnel(self, w: Window) -> list[tuple[str, int, int, int, int, int, int]]:
        """(sku, impressions, pinned impressions, viewers shown it, clicks, pinned clicks, viewers who tapped)."""
        sql = (
            "SELECT sku_id, sumIf(n, k = 'i'), sumIf(pinned, k = 'i'), sumIf(people, k = 'i'), "
            "sumIf(n, k = 'c'), sumIf(pinned, k = 'c'), sumIf(people, k = 'c') FROM ("
            " SELECT 'i' AS k, sku_id, count() AS n, countIf(placement = 'pinned') AS pinned,"
            "  uniqExact(user_id) AS people"
            f" FROM {self.db}.impressions FINAL WHERE {self._where()} GROUP BY sku_id"
            " UNION ALL"
            " SELECT 'c' AS k, sku_id, count(), countIf(placement = 'pinned'), uniqExact(user_id)"
            f" FROM {self.db}.product_clicks FINAL WHERE {self._where()} GROUP BY sku_id"
            ") GROUP BY sku_id ORDER BY sku_id"
        )
        return [tuple(str(x) if i == 0 else int(x) for i, x in enumerate(row))  # type: ignore[misc]
                for row in self._rows(sql, w.params)]

    def funnel_people(self, w: Window) -> dict[str, int]:
        """Distinct viewers shown any product, who tapped any product, who followed; joins of followers."""
        sql = (
            f"SELECT (SELECT uniqExact(user_id) FROM {self.db}.impressions WHERE {self._where()}), "
            f"(SELECT uniqExact(user_id) FROM {self.db}.product_clicks WHERE {self._where()}), "
            f"(SELECT uniqExact(user_id) FROM {self.db}.follows WHERE {self._where()}), "
            f"(SELECT countIf(is_follower = true) FROM {self.db}.presence FINAL WHERE {self._where()} "
            "AND action = 'join')"
        )
        shown, tapped, followed, follower_joins = self._rows(sql, w.params)[0]
        return {"impression_viewers": int(shown), "click_viewers": int(tapped), "new_followers": int(followed),
                "follower_entries": int(follower_joins)}

    def entries_by_source(self, w: Window) -> list[tuple[str, int, int, int, int]]:
        """(source, joins, joins of followers, joins of non-followers, joins that did not say) per source."""
        sql = (
            "SELECT ifNull(source, 'unknown') AS s, count(), countIf(is_follower = true), "
            "countIf(is_follower = false), countIf(isNull(is_follower)) "
            f"FROM {self.db}.presence FINAL WHERE {self._where()} AND action = 'join' GROUP BY s ORDER BY s"
        )
        return [(str(s), int(n), int(f), int(nf), int(u)) for s, n, f, nf, u in self._rows(sql, w.params)]

    def conversion_by_source(self, w: Window) -> list[tuple[str, int, int]]:
        """(source, viewers, buyers): each viewer counts for the source of their first join in the
        window, and is a buyer when they have an accepted order attempted in the window."""
        sql = (
            "SELECT s, count(), countIf(user_id IN ("
            f"  SELECT user_id FROM {self.db}.order_results FINAL"
            f"  WHERE {self._where('attempt_ts')} AND status = 'accepted')) FROM ("
            " SELECT user_id, argMin(ifNull(source, 'unknown'), (ts, event_id)) AS s"
            f" FROM {self.db}.presence FINAL WHERE {self._where()} AND action = 'join' GROUP BY user_id"
            ") GROUP BY s ORDER BY s"
        )
        return [(str(s), int(v), int(b)) for s, v, b in self._rows(sql, w.params)]

    def host_actions(self, w: Window, limit: int) -> list[tuple[int, str, str, int, int, str, str]]:
        """The host's actions in the window, oldest first: (ts ms, action, sku, stock, price cents, title, host)."""
        sql = (
            "SELECT toUnixTimestamp64Milli(ts), action, sku_id, ifNull(stock, 0), ifNull(price_cents, 0), "
            f"ifNull(title, ''), host_id FROM {self.db}.host_actions FINAL WHERE {self._where()} "
            "ORDER BY ts, event_id LIMIT {limit:UInt32}"
        )
        return [(int(t), str(a), str(s), int(st), int(p), str(ti), str(h))
                for t, a, s, st, p, ti, h in self._rows(sql, {**w.params, "limit": limit})]
