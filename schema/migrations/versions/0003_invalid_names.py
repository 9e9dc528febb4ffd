"""report connector and controller names the MQTT broker refuses

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 18:30:00

Names are checked as Mosquitto checks topics since this version (schema/topics.py). Rows
stored before, or by hand, are reported here, one warning each, and left as they are: a
rename changes every topic of a connector, so only its operator can choose the new name
(and configure the connector with it). ingestd leaves out what the broker refuses; the
admin UI saves such a row only once it is renamed; it can always be deleted.
"""

import sqlalchemy as sa
import structlog
from alembic import op

from schema.topics import broker_refusal, connector_name_problem

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = structlog.get_logger("schema.migrations")


def upgrade() -> None:
    connection = op.get_bind()
    for table in ("connector", "controller"):
        rows = connection.execute(sa.text(f"SELECT id, name FROM {table} ORDER BY id"))
        for row_id, name in rows:
            refused = broker_refusal(name)
            problem = refused or connector_name_problem(name)
            if problem is None:
                continue
            log.warning(
                "name_refused_by_broker" if refused else "name_not_valid",
                table=table,
                id=row_id,
                name=name,
                problem=problem,
                effect=(
                    "ingestd leaves it out until it is renamed or deleted"
                    if refused
                    else "the admin UI saves it only once it is renamed"
                ),
            )


def downgrade() -> None:
    # Nothing was changed.
    pass
