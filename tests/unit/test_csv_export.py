"""Every CSV column the report writes is guarded against formula injection (issue 14, failure 12).

The attack: a SKU id ``-1-1`` (a valid id) was written as a bare cell of ``rejections.csv``, and a
spreadsheet evaluates it.  The property: whatever text any field of a report holds, no cell of any
file starts with a formula character unless it is a number.
"""

from __future__ import annotations

import csv
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analytics.export import FORMULA_START, export_csv
from analytics.model import (
    AlertRow,
    Comparison,
    Figures,
    MinuteRow,
    Report,
    SkuFigures,
    Spike,
    StreamReport,
    TopComment,
)
from schemas.base import MAX_TS_MS, MIN_TS_MS

#: Texts shaped like the attack, plus arbitrary text (which includes the rest of the alphabet).
hostile = st.one_of(
    st.sampled_from(["-1-1", "=1+1", "+SUM(A1)", "@A1", "\t=1", "\r=1", "\uff1d1+1", "-", "-2", "=HYPERLINK(\"x\")"]),
    st.text(max_size=12),
)
ints = st.integers(-(10**6), 10**15)
floats = st.floats(-1e6, 1e6, allow_nan=False)
times = st.integers(MIN_TS_MS, MAX_TS_MS)  # what the warehouse can hold

skus = st.builds(SkuFigures, sku_id=hostile, title=hostile, price_cents=ints, attempts=ints, accept_rate=floats,
                 sold_out_at_ms=st.none() | ints, rejections=st.dictionaries(hostile, ints, max_size=3))
comments = st.builds(TopComment, ts_ms=times, user=hostile, text=hostile, score=floats)
alerts = st.builds(AlertRow, ts_ms=times, kind=hostile, level=hostile, message=hostile, value=floats, threshold=floats)
minutes = st.builds(MinuteRow, minute_ms=times, comments=ints, sentiment_sum=floats)
figures = st.builds(Figures, comments=ints, avg_online=floats, sentiment_avg=st.none() | floats)
streams = st.builds(
    StreamReport, room_id=hostile, start_ms=times, end_ms=times, label=hostile,
    figures=figures, minutes=st.lists(minutes, max_size=2),
    online=st.lists(st.tuples(ints, ints), max_size=2), skus=st.lists(skus, max_size=3),
    spikes=st.lists(st.builds(Spike, minute_ms=times, negative=ints, scored=ints, share=floats),
                    max_size=2),
    top_positive=st.lists(comments, max_size=2), top_negative=st.lists(comments, max_size=2),
    hot_words=st.lists(st.tuples(hostile, ints), max_size=3), hot_words_exact=st.booleans(),
    alerts=st.lists(alerts, max_size=2), alerts_total=ints,
    alert_kinds=st.lists(st.tuples(hostile, hostile, ints), max_size=2),
)
reports = st.builds(
    Report, current=streams, previous=st.none() | streams,
    comparison=st.lists(st.builds(Comparison, name=hostile, current=st.none() | floats | ints,
                                  previous=st.none() | floats | ints), max_size=3),
    generated_ms=ints,
)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report=reports)
def test_no_cell_of_any_file_can_start_a_formula(report: Report) -> None:
    with tempfile.TemporaryDirectory() as directory:
        files = export_csv(report, directory)
        assert files
        for path in files:
            with Path(path).open(encoding="utf-8-sig", newline="") as f:
                rows = list(csv.reader(f))
            for row in rows[1:]:
                for value in row:
                    assert not value.startswith(FORMULA_START) or _is_number(value), (path.name, value)


def test_the_attack_sku_id_is_defused_in_rejections_csv(tmp_path: Path) -> None:
    stream = StreamReport(
        room_id="r1", start_ms=0, end_ms=60_000, label="stream", figures=Figures(), minutes=[], online=[],
        skus=[SkuFigures(sku_id="-1-1", rejections={"sold_out": 3})], spikes=[], top_positive=[], top_negative=[],
        hot_words=[], hot_words_exact=True, alerts=[], alerts_total=0, alert_kinds=[],
    )
    export_csv(Report(current=stream, previous=None, comparison=[], generated_ms=0), tmp_path)
    with (tmp_path / "rejections.csv").open(encoding="utf-8-sig", newline="") as f:
        assert list(csv.reader(f))[1] == ["'-1-1", "sold_out", "3"]
