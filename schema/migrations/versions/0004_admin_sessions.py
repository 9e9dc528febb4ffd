"""admin sessions on the server, so that logging out ends a session

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 18:00:00

The admin cookie now names a row of admin_session (by the SHA-256 of its id); logout deletes
the row, and a cookie copied before then is refused. Cookies from before this revision name
no row: their users log in once more.
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_session",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["auth_user.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("key_hash"),
    )


def downgrade() -> None:
    op.drop_table("admin_session")
