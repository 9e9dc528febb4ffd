from alembic.script import ScriptDirectory
from sqlalchemy import text

from schema.database import create_sqlalchemy_engine
from schema.migrate import MIGRATIONS_DIR, current_revision, migrate
from schema.settings import load_settings
from schema.timescale import hypertable_statements


def _head() -> str:

    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def _version(connection) -> int:
    return connection.execute(text("SELECT version FROM control_plane_version")).scalar_one()


def test_migrate_is_idempotent_and_seeds(settings):
    engine = create_sqlalchemy_engine(settings)
    migrate(engine)  # a second run (the fixture ran the first) changes nothing
    assert current_revision(engine) == _head()
    with engine.connect() as connection:
        codenames = connection.execute(text("SELECT codename FROM auth_permission")).scalars()
        assert {"view_datapoint", "change_datapoint", "delete_connector"} <= set(codenames)
    engine.dispose()


def test_triggers_bump_the_control_plane_version_only_for_what_ingestd_follows(settings):
    engine = create_sqlalchemy_engine(settings)
    with engine.begin() as c:
        start = _version(c)
        c.execute(
            text("INSERT INTO connector (id, name, date_added) VALUES (1, 'c1', :t)"),
            {"t": _now(settings)},
        )
        after_connector = _version(c)
        c.execute(
            text(
                "INSERT INTO datapoint (id, connector_id, key_in_connector, type, is_active, "
                "data_format, description, unit) "
                "VALUES (1, 1, 'k', 'sensor', false, 'unknown', '', '')"
            )
        )
        after_inactive = _version(c)
        c.execute(text("UPDATE datapoint SET example_value = '1' WHERE id = 1"))
        after_example = _version(c)
        c.execute(text("UPDATE datapoint SET is_active = true WHERE id = 1"))
        after_activation = _version(c)
        c.execute(text("UPDATE datapoint SET description = 'x' WHERE id = 1"))
        after_description = _version(c)
    assert after_connector == start + 1
    assert after_inactive == after_connector
    assert after_example == after_inactive
    assert after_activation == after_example + 1
    assert after_description == after_activation
    engine.dispose()


def _now(settings):
    import datetime

    now = datetime.datetime.now(datetime.UTC)
    return now if settings.uses_postgres else int(now.timestamp() * 1000)


def test_hypertable_sql_is_guarded_and_well_formed():
    statements = hypertable_statements("datapoint_value")
    assert statements[0] == "CREATE EXTENSION IF NOT EXISTS timescaledb"
    assert "create_hypertable('datapoint_value', 'time'" in statements[1]
    assert "migrate_data => true" in statements[1]


def test_hypertable_sql_refuses_non_identifiers():
    import pytest

    with pytest.raises(ValueError):
        hypertable_statements("x; DROP TABLE y")


def test_settings_fixture_points_at_a_fresh_database(db_env):
    settings = load_settings(db_env)
    engine = create_sqlalchemy_engine(settings)
    with engine.connect() as c:
        assert c.execute(text("SELECT count(*) FROM connector")).scalar_one() == 0
    engine.dispose()
