import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schema.values import answer_value, float_text, join_value, split_value


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


# What the original answers for a stored value: json.dumps(float(s)) for a string s that
# Python's float() reads, else the value as it is.
@pytest.mark.parametrize(
    ("sent", "original"),
    [
        ('"22.3"', "22.3"),
        ('"22.30"', "22.3"),
        ('"1e3"', "1000.0"),
        ('"18.0"', "18.0"),
        ('"-0.0"', "-0.0"),
        ('"NaN"', "NaN"),
        ('"nan"', "NaN"),
        ('"-inf"', "-Infinity"),
        ('"Infinity"', "Infinity"),
        ('"1e999"', "Infinity"),
        ('" 22 "', "22.0"),  # float() strips whitespace
        ('"\\t22\\n"', "22.0"),
        ('"\\u00a022"', "22.0"),  # a no-break space is whitespace to float() too
        ('"1_0"', "10.0"),  # underscores between digits, as in Python literals
        ('"\\u0663"', "3.0"),  # ARABIC-INDIC DIGIT THREE: float() reads any decimal digit
        ('"1__0"', '"1__0"'),
        ('"_1"', '"_1"'),
        ('"0x10"', '"0x10"'),
        ('""', '""'),
        ('" "', '" "'),
        ('"22,3"', '"22,3"'),
        ('"hello"', '"hello"'),
        ('"true"', '"true"'),
        ('"\\"22.3\\""', '"\\"22.3\\""'),  # a string of a string stays one
        # Numbers keep their text (only the spelling differs from the original's float).
        ("42", "42"),
        ("9007199254740993", "9007199254740993"),
        ("22.30", "22.30"),
        ("NaN", "NaN"),
        ("true", "true"),
        ("null", "null"),
        ('{"a": "1"}', '{"a": "1"}'),
        ('["1"]', '["1"]'),
    ],
)
def test_answer_as_the_original(sent, original):
    num, raw = split_value(sent)
    assert answer_value(num, raw, exact=False) == original
    assert answer_value(num, raw, exact=True) == sent


@given(st.text(max_size=30))
def test_a_string_is_answered_as_float_reads_it(inner):
    text = json.dumps(inner)
    num, raw = split_value(text)
    answered = answer_value(num, raw, exact=False)
    try:
        number = float(inner)
    except ValueError:
        assert answered == text
    else:
        assert answered == json.dumps(number)
    assert answer_value(num, raw, exact=True) == text


@given(st.floats())
def test_float_text_is_json_dumps(number):
    assert float_text(number) == json.dumps(number)


@given(st.text(alphabet=" \t\n\u00a0\u30000123456789\u0663\uff15_.eE+-infINFatyTY", max_size=14))
def test_strings_near_numbers_are_answered_as_float_reads_them(inner):
    text = json.dumps(inner, ensure_ascii=False)
    try:
        number = float(inner)
    except ValueError:
        number = None
    expected = text if number is None else json.dumps(number)
    assert answer_value(*split_value(text), exact=False) == expected
    # The stored float, for averages, is the one the original stores (when finite).
    finite = number is not None and math.isfinite(number)
    assert split_value(text)[0] == (number if finite else None)


def test_every_character_float_reads_around_a_digit_is_taken_in():
    """The quick filter before float() must let through all that float() reads. Checked as
    leading and trailing character of a digit for the first 12,544 code points (ASCII, Latin,
    the spaces up to U+3000) and every other code point Python calls a space or a decimal digit
    (float() maps exactly those to ASCII before parsing)."""
    codes = set(range(0x3100)) | {
        code
        for code in range(0x3100, 0x110000)
        if not 0xD800 <= code <= 0xDFFF and (chr(code).isspace() or chr(code).isdecimal())
    }
    for code in sorted(codes - set(range(0xD800, 0xE000))):
        char = chr(code)
        for inner in (f"{char}1", f"1{char}"):
            try:
                expected = json.dumps(float(inner))
            except ValueError:
                continue
            text = json.dumps(inner, ensure_ascii=False)
            assert answer_value(None, text, exact=False) == expected, hex(code)
