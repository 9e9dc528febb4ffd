"""The soak reports each sample's and each phase's own lag, not ingestd's lifetime one."""

from __future__ import annotations

import math

from tests.soak.__main__ import lag_quantile

BEFORE = [(0.01, 900.0), (0.1, 1000.0), (1.0, 1000.0), (math.inf, 1000.0)]


def test_only_the_interval_counts():
    # 100 new messages, all slow: the lifetime p99 would still be 0.1 s.
    now = [(0.01, 900.0), (0.1, 1000.0), (1.0, 1100.0), (math.inf, 1100.0)]
    assert lag_quantile(now, BEFORE, 0.99) == 1.0
    assert lag_quantile(now, [], 0.5) == 0.01


def test_no_messages_in_the_interval_is_no_figure():
    assert lag_quantile(BEFORE, BEFORE, 0.99) is None
    assert lag_quantile([], BEFORE, 0.99) is None


def test_beyond_the_last_bound_is_infinite():
    now = [(0.01, 900.0), (0.1, 1000.0), (1.0, 1000.0), (math.inf, 1100.0)]
    assert lag_quantile(now, BEFORE, 0.99) == math.inf
