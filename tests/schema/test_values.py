import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schema.values import join_value, split_value


@pytest.mark.parametrize(
    ("text", "num", "raw"),
    [
        ("21.5", 21.5, None),
        ("0.30000000000000004", 0.30000000000000004, None),
        ("-1.25e-07", -1.25e-07, None),
        ("42", 42.0, "42"),
        ("9007199254740993", 9007199254740992.0, "9007199254740993"),
        ('"18.0"', 18.0, '"18.0"'),
        ('"hello world"', None, '"hello world"'),
        ('"Gr\\u00fc\\u00dfe \\u2713"', None, '"Gr\\u00fc\\u00dfe \\u2713"'),
        ("true", None, "true"),
        ("false", None, "false"),
        ("null", None, None),
        ("NaN", None, "NaN"),
        ("Infinity", None, "Infinity"),
        ("-Infinity", None, "-Infinity"),
        ('{"a": [1, 2]}', None, '{"a": [1, 2]}'),
        ('"nan"', None, '"nan"'),
        ('"1e999"', None, '"1e999"'),
    ],
)
def test_split_keeps_exact_text_and_a_float_for_averages(text, num, raw):
    assert split_value(text) == (num, raw)
    assert join_value(*split_value(text)) == text


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=5,
    )
)
def test_any_json_value_round_trips(value):
    text = json.dumps(value)
    num, raw = split_value(text)
    assert join_value(num, raw) == text
    if num is not None:
        assert math.isfinite(num)
