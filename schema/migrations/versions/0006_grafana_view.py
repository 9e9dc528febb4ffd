"""views for Grafana: datapoints, values and last values with their names

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 19:00:00

Grafana's PostgreSQL data source plots any datapoint with a plain query on these views
(deploy/monitoring/grafana/dashboards/building-data.json):
- grafana_datapoint: one row per datapoint, with its connector and a `label` to show;
- grafana_value: one row per stored value (time, names, unit, type, value_num);
- grafana_last_value: the last value of each datapoint, its time and its age in seconds.
`time` is a timestamptz on PostgreSQL and integer ms on SQLite, as in the tables.
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

VIEWS = ("grafana_last_value", "grafana_value", "grafana_datapoint")

_DATAPOINT = """
CREATE VIEW grafana_datapoint AS
SELECT d.id AS datapoint_id, c.name AS connector, d.key_in_connector AS key,
       d.short_name, d.description, d.unit, d.type, d.is_active,
       c.name || '/' || COALESCE(NULLIF(d.short_name, ''), d.key_in_connector) AS label
FROM datapoint d JOIN connector c ON c.id = d.connector_id
"""

_VALUE = """
CREATE VIEW grafana_value AS
SELECT v.time, g.connector, g.datapoint_id, g.key, g.short_name, g.description, g.unit,
       g.type, g.label, v.value_num
FROM datapoint_value v JOIN grafana_datapoint g ON g.datapoint_id = v.datapoint_id
"""

_LAST_VALUE = """
CREATE VIEW grafana_last_value AS
SELECT l.time, g.connector, g.datapoint_id, g.key, g.short_name, g.description, g.unit,
       g.type, g.label, l.value_num, l.value_raw, {age} AS age_seconds
FROM datapoint_last_value l JOIN grafana_datapoint g ON g.datapoint_id = l.datapoint_id
"""

_AGE = {
    "postgresql": "extract(epoch FROM now() - l.time)",
    # Integer ms in SQLite; julianday('now') keeps the milliseconds strftime('%s') drops.
    "sqlite": "(julianday('now') - 2440587.5) * 86400.0 - l.time / 1000.0",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(_DATAPOINT)
    op.execute(_VALUE)
    op.execute(_LAST_VALUE.format(age=_AGE[dialect]))


def downgrade() -> None:
    for view in VIEWS:
        op.execute(f"DROP VIEW IF EXISTS {view}")
