"""login failures, for throttling password guessing

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 03:00:00

Failed logins counted per username and per client address, in the database so that every
readapi worker process sees the same counts.
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failure",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start_ms", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_hash"),
    )


def downgrade() -> None:
    op.drop_table("login_failure")
