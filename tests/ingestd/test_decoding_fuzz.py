"""Hostile payloads: every decoder either gives a row or a Rejected, never anything else."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingestd.batch import Batch
from ingestd.decoding import DECODE_BY_KIND, Rejected
from schema.values import join_value

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=8,
)
documents = st.dictionaries(
    st.sampled_from(
        [
            "value",
            "timestamp",
            "setpoint",
            "schedule",
            "msg",
            "level",
            "emitter",
            "sensor",
            "actuator",
            "this_heartbeats_timestamp",
            "next_heartbeats_timestamp",
            "x",
        ]
    ),
    json_values | st.integers(min_value=10**11, max_value=10**14),
    max_size=6,
)


@pytest.mark.parametrize("kind", sorted(DECODE_BY_KIND))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(payload=st.binary(max_size=200) | documents.map(lambda d: json.dumps(d).encode()))
def test_any_payload_is_a_row_or_a_rejection(kind, payload):
    try:
        row = DECODE_BY_KIND[kind](7, payload)
    except Rejected as rejected:
        assert rejected.cause in {"malformed_json", "invalid_payload", "bad_timestamp"}
        return
    batch = Batch()
    batch.add(kind, row)  # whatever decodes is a row the stores accept
    assert len(batch) == 1


@settings(max_examples=300, deadline=None)
@given(value=json_values, timestamp=st.integers(min_value=10**11, max_value=10**14))
def test_every_value_message_keeps_its_exact_json(value, timestamp):
    text = json.dumps(value)
    payload = b'{"value": ' + text.encode() + b', "timestamp": ' + str(timestamp).encode() + b"}"
    datapoint_id, time, value_num, value_raw = DECODE_BY_KIND["value"](3, payload)
    assert (datapoint_id, time) == (3, timestamp)
    assert join_value(value_num, value_raw) == text
