"""The e2e bench's matching of a host's updates to the actions they include (pure part)."""

from __future__ import annotations

from bench.e2e import Ledger, _percentile


def test_each_action_is_matched_once_by_the_first_update_that_includes_it() -> None:
    ledger = Ledger(comment_sent={"c1": 1000, "c2": 1100}, like_sent=[1000, 1010, 1020], order_sent=[1000, 1050])
    ledger.on_update({"comments": [{"event_id": "c2"}, {"event_id": "other"}]}, "sku-0", 1400)
    ledger.on_update({"counters": {"likes_total": 2}, "stock": {"sku-0": {"reserved": 1, "sold": 0}}}, "sku-0", 1500)
    # a later update repeats what was already counted: nothing is matched twice
    ledger.on_update({"counters": {"likes_total": 2}, "stock": {"sku-0": {"reserved": 0, "sold": 1}}}, "sku-0", 1600)
    ledger.on_update({"counters": {"likes_total": 9}, "stock": {"sku-1": {"reserved": 5, "sold": 0}},
                      "comments": [{"event_id": "c2"}]}, "sku-0", 1700)
    assert ledger.comment_ms == [(1100, 300)]
    assert ledger.like_ms == [(1000, 500), (1010, 490), (1020, 680)]  # likes_total beyond what was sent is ignored
    assert ledger.order_ms == [(1000, 500)]  # another SKU's stock does not count
    assert "c1" in ledger.comment_sent  # never seen: reported as missing


def test_percentile_is_an_observed_value() -> None:
    assert _percentile([], 0.99) is None
    assert _percentile([5, 1, 3], 0.5) == 3
    assert _percentile(list(range(1, 101)), 0.99) == 100
