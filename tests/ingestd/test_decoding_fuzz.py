"""Hostile payloads as raw bytes: every payload either is rejected with a known cause, or
its row is committed to a real database (PostgreSQL and SQLite) and read back as decoded.

The bytes are not only json.dumps' ASCII: invalid UTF-8, encoded lone surrogates, raw
control characters, deep nesting and stray bytes inside otherwise good documents.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from ingestd.batch import Batch
from ingestd.daemon import IngestDaemon
from ingestd.decoding import CAUSES, DECODE_BY_KIND, Rejected, decode_message
from ingestd.routing import AVAILABLE, HEARTBEAT, LOGS, SCHEDULE, SETPOINT, VALUE
from schema import tables as t
from schema.database import create_sqlalchemy_engine
from schema.settings import load_settings
from schema.values import join_value
from tests.support.ingest import create_connector, create_datapoints

# Text with everything: lone surrogates, U+0000, control characters, non-characters.
any_text = st.text(alphabet=st.characters(blacklist_categories=()), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
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


timestamps = st.integers(min_value=10**11, max_value=10**14) | st.integers()
plans = st.none() | st.lists(st.dictionaries(any_text, json_values, max_size=3), max_size=3)
# Documents of each kind's shape, with anything in the fields: most reach the database.
SHAPED = {
    VALUE: st.fixed_dictionaries({"value": json_values, "timestamp": timestamps}),
    SETPOINT: st.fixed_dictionaries({"setpoint": plans | json_values, "timestamp": timestamps}),
    SCHEDULE: st.fixed_dictionaries({"schedule": plans | json_values, "timestamp": timestamps}),
    LOGS: st.fixed_dictionaries(
        {"timestamp": timestamps, "msg": any_text, "level": st.integers()},
        optional={"emitter": st.none() | any_text},
    ),
    HEARTBEAT: st.fixed_dictionaries(
        {"this_heartbeats_timestamp": timestamps, "next_heartbeats_timestamp": timestamps}
    ),
    AVAILABLE: st.fixed_dictionaries(
        {},
        optional={
            "sensor": st.dictionaries(any_text, json_values, max_size=4),
            "actuator": st.dictionaries(any_text, json_values, max_size=4),
        },
    ),
}


def _encode(document, ascii_only: bool) -> bytes:
    # surrogatepass: a lone surrogate becomes the bytes a careless encoder would send.
    return json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


@st.composite
def spliced(draw, encoded):
    """A document with a few raw bytes put somewhere inside it."""
    data = draw(encoded)
    at = draw(st.integers(0, len(data)))
    return data[:at] + draw(st.binary(min_size=1, max_size=4)) + data[at:]


@st.composite
def nested(draw):
    depth = draw(st.integers(1, 3000))
    inner = b"[" * depth + b"1" + b"]" * depth
    field = draw(st.sampled_from([b"value", b"setpoint", b"schedule", b"sensor"]))
    return b'{"%s": %s, "timestamp": 1700000000000}' % (field, inner)


def payloads(kind: str):
    encoded = st.builds(_encode, SHAPED[kind] | documents, st.booleans())
    return st.binary(max_size=200) | encoded | spliced(encoded) | nested()


class Target:
    """A real store on a migrated database, with a connector and two datapoints."""

    def __init__(self, env: dict[str, str]) -> None:
        settings = load_settings({**env, "N_MTD_WRITE_THREADS": "1"})
        self.engine = create_sqlalchemy_engine(settings)
        self.connector_id = create_connector(self.engine, "fuzz")
        (self.datapoint_id,) = create_datapoints(
            self.engine, self.connector_id, ["a"], kind="actuator"
        )
        # The daemon's own store, as ingestd builds it (not started: no broker needed).
        self.daemon = IngestDaemon(settings)
        if self.daemon._pool is not None:
            self.daemon._pool.open()
        self.store = self.daemon.store

    def close(self) -> None:
        if self.daemon._pool is not None:
            self.daemon._pool.close()
        self.daemon.engine.dispose()
        self.engine.dispose()

    def committed(self, kind: str, row: tuple) -> bool:
        """Whether `row` is what the database now holds."""
        with self.engine.connect() as c:
            if kind == VALUE:
                table = t.datapoint_value
                found = c.execute(
                    select(table.c.value_num, table.c.value_raw).where(
                        table.c.datapoint_id == row[0], table.c.time == row[1]
                    )
                ).first()
                return found is not None and join_value(*found) == join_value(row[2], row[3])
            if kind in (SETPOINT, SCHEDULE):
                table = t.datapoint_setpoint if kind == SETPOINT else t.datapoint_schedule
                found = c.execute(
                    select(table.c[kind]).where(
                        table.c.datapoint_id == row[0], table.c.time == row[1]
                    )
                ).scalar_one_or_none()
                return found == row[2]
            if kind == LOGS:
                table = t.connector_log_entry
                found = c.execute(
                    select(table.c.msg, table.c.emitter, table.c.level).where(
                        table.c.connector_id == row[0], table.c.timestamp == row[1]
                    )
                ).all()
                return tuple(row[2:]) in {tuple(f) for f in found}
            if kind == HEARTBEAT:
                table = t.connector_heartbeat
                found = c.execute(
                    select(table.c.last_heartbeat, table.c.next_heartbeat).where(
                        table.c.connector_id == row[0]
                    )
                ).first()
                return tuple(found) == tuple(row[1:])
            table = t.datapoint
            examples = dict(
                c.execute(
                    select(
                        t.datapoint.c.key_in_connector + "/" + t.datapoint.c.type,
                        t.datapoint.c.example_value,
                    ).where(table.c.connector_id == row[0])
                ).all()
            )
            return all(examples.get(f"{key}/{type_}") == example for key, type_, example in row[1])

    def write(self, kind: str, row: tuple) -> None:
        if kind == HEARTBEAT:  # the upsert keeps the newest: start from none
            with self.engine.begin() as c:
                c.execute(delete(t.connector_heartbeat))
        batch = Batch()
        batch.add(kind, row)
        self.store.write(batch)


@pytest.fixture(scope="module", params=["postgres", "sqlite"])
def target(request, pg_template, tmp_path_factory):
    if request.param == "sqlite":
        from schema.migrate import migrate
        from tests.conftest import base_env

        env = base_env(BEMCOM_DATA_DIR=str(tmp_path_factory.mktemp("fuzz") / "data"))
        engine = create_sqlalchemy_engine(load_settings(env))
        migrate(engine)
        engine.dispose()
        target = Target(env)
        yield target
        target.close()
        return
    import secrets

    from tests.conftest import PG_HOST, PG_PORT, PG_USER, admin_connect, base_env

    name = f"bemcom_test_{secrets.token_hex(6)}"
    with admin_connect() as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    env = base_env(
        DJANGOAPIDB_HOST=PG_HOST,
        DJANGOAPIDB_PORT=str(PG_PORT),
        DJANGOAPIDB_USER=PG_USER,
        DJANGOAPIDB_DBNAME=name,
    )
    target = Target(env)
    yield target
    target.close()
    with admin_connect() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.parametrize("kind", sorted(DECODE_BY_KIND))
def test_any_payload_is_rejected_with_a_cause_or_committed(target, kind):
    target_id = target.connector_id if kind in (LOGS, HEARTBEAT, AVAILABLE) else target.datapoint_id
    outcomes = {"rejected": 0, "committed": 0}

    @settings(
        max_examples=60,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(payload=payloads(kind))
    def check(payload):
        try:
            row = decode_message(kind, target_id, payload)
        except Rejected as rejected:
            assert rejected.cause in CAUSES, rejected
            outcomes["rejected"] += 1
            return
        target.write(kind, row)
        assert target.committed(kind, row), (payload, row)
        outcomes["committed"] += 1

    check()
    # Both outcomes happen: the generator reaches rows, not only rejections.
    assert outcomes["rejected"] > 0 and outcomes["committed"] > 0, outcomes


@settings(max_examples=300, deadline=None)
@given(value=json_values, timestamp=st.integers(min_value=10**11, max_value=10**14))
def test_every_value_message_keeps_its_exact_json(value, timestamp):
    text = json.dumps(value)
    payload = b'{"value": ' + text.encode() + b', "timestamp": ' + str(timestamp).encode() + b"}"
    datapoint_id, time, value_num, value_raw = DECODE_BY_KIND["value"](3, payload)
    assert (datapoint_id, time) == (3, timestamp)
    assert join_value(value_num, value_raw) == text
