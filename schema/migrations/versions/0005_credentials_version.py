"""credentials version, bumped by triggers whenever a credential may grant less

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 18:00:00

readapi's workers remember credentials they verified (argon2 is slow by design). Each
request compares this version first, so a password change, a deactivation, a removed
permission, group membership or group permission, or a deleted token holds at once in every
worker, whichever way the change was written (REST, admin UI, CLI, psql).
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_USER_CHANGED = (
    "OLD.password <> NEW.password OR OLD.username <> NEW.username "
    "OR OLD.is_active <> NEW.is_active OR OLD.is_staff <> NEW.is_staff "
    "OR OLD.is_superuser <> NEW.is_superuser"
)

# (trigger name, timing and event, condition or None); the same on both backends. Inserts
# into the link tables count too: a cached credential carries its permissions, which must
# grow as well as shrink. A new user or token cannot be in any cache, so those inserts don't.
CREDENTIALS_TRIGGERS = (
    ("credentials_user_changed", "AFTER UPDATE ON auth_user", _USER_CHANGED),
    ("credentials_user_deleted", "AFTER DELETE ON auth_user", None),
    ("credentials_token_changed", "AFTER UPDATE ON api_token", None),
    ("credentials_token_deleted", "AFTER DELETE ON api_token", None),
    ("credentials_group_deleted", "AFTER DELETE ON auth_group", None),
    ("credentials_permission_changed", "AFTER UPDATE ON auth_permission", None),
    ("credentials_permission_deleted", "AFTER DELETE ON auth_permission", None),
    *(
        (f"credentials_{table}_{verb}", f"AFTER {event} ON {table}", None)
        for table in ("auth_user_permissions", "auth_user_groups", "auth_group_permissions")
        for verb, event in (("added", "INSERT"), ("changed", "UPDATE"), ("deleted", "DELETE"))
    ),
)


def upgrade() -> None:
    op.create_table(
        "credentials_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO credentials_version (id, version) VALUES (1, 0)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION bump_credentials_version() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                UPDATE credentials_version SET version = version + 1 WHERE id = 1;
                RETURN NULL;
            END $$
            """
        )
        for name, event, condition in CREDENTIALS_TRIGGERS:
            when = f" WHEN ({condition})" if condition else ""
            op.execute(
                f"CREATE TRIGGER {name} {event} FOR EACH ROW{when} "
                "EXECUTE FUNCTION bump_credentials_version()"
            )
    else:
        for name, event, condition in CREDENTIALS_TRIGGERS:
            when = f" WHEN {condition}" if condition else ""
            op.execute(
                f"CREATE TRIGGER {name} {event} FOR EACH ROW{when} BEGIN "
                "UPDATE credentials_version SET version = version + 1 WHERE id = 1; END"
            )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for name, event, _ in CREDENTIALS_TRIGGERS:
        table = event.split()[-1]
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS bump_credentials_version()")
    op.drop_table("credentials_version")
