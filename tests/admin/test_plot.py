"""The server-drawn plot: round axis labels, and nothing drawn from too little data."""

from __future__ import annotations

from readapi.admin.plot import _label, line_chart, nice_ticks


def test_ticks_are_round_and_cover_the_values():
    ticks = nice_ticks(21.7, 22.2)
    assert ticks == [21.6, 21.8, 22.0, 22.2]
    assert [_label(t, 0.2) for t in ticks] == ["21.6", "21.8", "22.0", "22.2"]
    assert nice_ticks(0, 1) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert _label(0.5, 0.25) == "0.50"
    big = nice_ticks(-3, 1017)
    assert big[0] <= -3 and big[-1] >= 1017 and _label(500, 500) == "500"


def test_chart():
    assert line_chart([]) == "" and line_chart([(1, 2.0)]) == ""
    flat = line_chart([(0, 5.0), (1000, 5.0)])
    assert "<polyline" in flat and ">5<" not in flat  # a band around a flat line
    svg = line_chart([(0, 1.0), (60_000, 3.0)], unit="°C")
    assert "1970-01-01 00:00:00 UTC" in svg and "1970-01-01 00:01:00 UTC" in svg
    assert "°C" in svg and svg.count("<line") >= 3
