"""The database schema, in SQLAlchemy Core: the only tables ingestd and readapi share.

Times are integer milliseconds since the epoch at the Python boundary everywhere. On
PostgreSQL they are stored as timestamptz (so TimescaleDB, date_bin and Grafana work on them),
on SQLite as integers; `EpochMillis` converts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.types import TypeDecorator

from schema.topics import SCHEDULE, SETPOINT, VALUE

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def millis_to_datetime(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def datetime_to_millis(value: datetime) -> int:
    delta = value - EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


class EpochMillis(TypeDecorator):
    """Integer ms at the Python side; timestamptz on PostgreSQL, an integer on SQLite."""

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value, dialect):
        if value is None or dialect.name != "postgresql":
            return value
        return millis_to_datetime(int(value))

    def process_result_value(self, value, dialect):
        if value is None or dialect.name != "postgresql":
            return value
        return datetime_to_millis(value)


metadata = MetaData()

DATAPOINT_TYPES = ("sensor", "actuator")
DATA_FORMATS = (
    "unknown",
    "generic_numeric",
    "continuous_numeric",
    "discrete_numeric",
    "generic_text",
    "discrete_text",
)

connector = Table(
    "connector",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("date_added", EpochMillis, nullable=False),
)

connector_log_entry = Table(
    "connector_log_entry",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("connector_id", Integer, ForeignKey("connector.id", ondelete="CASCADE"), nullable=False),
    Column("timestamp", EpochMillis, nullable=False),
    Column("msg", Text, nullable=False),
    Column("emitter", Text),
    Column("level", Integer, nullable=False),
    Index("ix_connector_log_entry_connector_time", "connector_id", "timestamp"),
)

connector_heartbeat = Table(
    "connector_heartbeat",
    metadata,
    Column(
        "connector_id",
        Integer,
        ForeignKey("connector.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("last_heartbeat", EpochMillis, nullable=False),
    Column("next_heartbeat", EpochMillis, nullable=False),
)

datapoint = Table(
    "datapoint",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("connector_id", Integer, ForeignKey("connector.id", ondelete="CASCADE"), nullable=False),
    Column("key_in_connector", Text, nullable=False),
    Column("type", String(8), nullable=False),
    Column("is_active", Boolean, nullable=False, default=False),
    # The example value as the connector sent it, JSON text.
    Column("example_value", Text),
    Column("short_name", String(30)),
    Column("data_format", String(32), nullable=False, default="unknown"),
    Column("description", Text, nullable=False, default=""),
    # JSON text of a list, or NULL.
    Column("allowed_values", Text),
    Column("min_value", Float),
    Column("max_value", Float),
    Column("unit", String(255), nullable=False, default=""),
    UniqueConstraint("connector_id", "key_in_connector", "type", name="uq_datapoint_key"),
)

# History tables are keyed by (datapoint_id, time): a repeat replaces, never duplicates.
# A value is stored as `value_num` (the float of a number or numeric string, for SQL averages)
# and `value_raw` (the JSON exactly as sent), where `value_raw` is NULL when the JSON text is
# what `repr(value_num)` gives back, and both are NULL for JSON null. See schema.values.
datapoint_value = Table(
    "datapoint_value",
    metadata,
    Column("datapoint_id", Integer, ForeignKey("datapoint.id", ondelete="CASCADE"), nullable=False),
    Column("time", EpochMillis, nullable=False),
    Column("value_num", Float),
    Column("value_raw", Text),
    PrimaryKeyConstraint("datapoint_id", "time", name="pk_datapoint_value"),
)

datapoint_setpoint = Table(
    "datapoint_setpoint",
    metadata,
    Column("datapoint_id", Integer, ForeignKey("datapoint.id", ondelete="CASCADE"), nullable=False),
    Column("time", EpochMillis, nullable=False),
    # JSON text of the setpoint list (or "null") as received.
    Column("setpoint", Text, nullable=False),
    PrimaryKeyConstraint("datapoint_id", "time", name="pk_datapoint_setpoint"),
)

datapoint_schedule = Table(
    "datapoint_schedule",
    metadata,
    Column("datapoint_id", Integer, ForeignKey("datapoint.id", ondelete="CASCADE"), nullable=False),
    Column("time", EpochMillis, nullable=False),
    Column("schedule", Text, nullable=False),
    PrimaryKeyConstraint("datapoint_id", "time", name="pk_datapoint_schedule"),
)

datapoint_last_value = Table(
    "datapoint_last_value",
    metadata,
    Column(
        "datapoint_id",
        Integer,
        ForeignKey("datapoint.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("time", EpochMillis, nullable=False),
    Column("value_num", Float),
    Column("value_raw", Text),
)

datapoint_last_setpoint = Table(
    "datapoint_last_setpoint",
    metadata,
    Column(
        "datapoint_id",
        Integer,
        ForeignKey("datapoint.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("time", EpochMillis, nullable=False),
    Column("setpoint", Text, nullable=False),
)

datapoint_last_schedule = Table(
    "datapoint_last_schedule",
    metadata,
    Column(
        "datapoint_id",
        Integer,
        ForeignKey("datapoint.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("time", EpochMillis, nullable=False),
    Column("schedule", Text, nullable=False),
)

controller = Table(
    "controller",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
)

controlled_datapoint = Table(
    "controlled_datapoint",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "controller_id", Integer, ForeignKey("controller.id", ondelete="CASCADE"), nullable=False
    ),
    Column(
        "sensor_datapoint_id",
        Integer,
        ForeignKey("datapoint.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "actuator_datapoint_id",
        Integer,
        ForeignKey("datapoint.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("is_active", Boolean, nullable=False, default=True),
    UniqueConstraint(
        "controller_id",
        "sensor_datapoint_id",
        "actuator_datapoint_id",
        name="uq_controlled_datapoint_pair",
    ),
)

auth_user = Table(
    "auth_user",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(150), nullable=False, unique=True),
    # An argon2 hash; never the password.
    Column("password", Text, nullable=False),
    Column("email", String(254), nullable=False, default=""),
    Column("first_name", String(150), nullable=False, default=""),
    Column("last_name", String(150), nullable=False, default=""),
    Column("is_superuser", Boolean, nullable=False, default=False),
    Column("is_staff", Boolean, nullable=False, default=False),
    Column("is_active", Boolean, nullable=False, default=True),
    Column("date_joined", EpochMillis, nullable=False),
    Column("last_login", EpochMillis),
)

auth_group = Table(
    "auth_group",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(150), nullable=False, unique=True),
)

auth_permission = Table(
    "auth_permission",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("codename", String(100), nullable=False, unique=True),
    Column("name", String(255), nullable=False),
)

auth_user_groups = Table(
    "auth_user_groups",
    metadata,
    Column("user_id", Integer, ForeignKey("auth_user.id", ondelete="CASCADE"), nullable=False),
    Column("group_id", Integer, ForeignKey("auth_group.id", ondelete="CASCADE"), nullable=False),
    PrimaryKeyConstraint("user_id", "group_id", name="pk_auth_user_groups"),
)

auth_user_permissions = Table(
    "auth_user_permissions",
    metadata,
    Column("user_id", Integer, ForeignKey("auth_user.id", ondelete="CASCADE"), nullable=False),
    Column(
        "permission_id",
        Integer,
        ForeignKey("auth_permission.id", ondelete="CASCADE"),
        nullable=False,
    ),
    PrimaryKeyConstraint("user_id", "permission_id", name="pk_auth_user_permissions"),
)

auth_group_permissions = Table(
    "auth_group_permissions",
    metadata,
    Column("group_id", Integer, ForeignKey("auth_group.id", ondelete="CASCADE"), nullable=False),
    Column(
        "permission_id",
        Integer,
        ForeignKey("auth_permission.id", ondelete="CASCADE"),
        nullable=False,
    ),
    PrimaryKeyConstraint("group_id", "permission_id", name="pk_auth_group_permissions"),
)

api_token = Table(
    "api_token",
    metadata,
    # SHA-256 hex of the token: a leaked database does not leak usable tokens.
    Column("key_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("auth_user.id", ondelete="CASCADE"), nullable=False),
    Column("created", EpochMillis, nullable=False),
    Column("label", String(255), nullable=False, default=""),
)

# Failed logins in the current window, per username and per client address (keyed by a
# SHA-256, so neither is stored): readapi's brute-force throttle, shared by its workers.
login_failure = Table(
    "login_failure",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start_ms", BigInteger, nullable=False),
)

# Bumped by triggers (migration 0005) on every write that can take away what a credential
# grants: passwords, the active/staff/superuser flags, usernames, user and group permissions,
# group memberships, groups, tokens. readapi's workers compare it before trusting a
# credential they verified earlier, so a revocation holds at once in every one of them.
credentials_version = Table(
    "credentials_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# Admin UI sessions on the server: the cookie carries the id, the table its SHA-256, so
# logging out (deleting the row) ends the session wherever the cookie has been copied to.
admin_session = Table(
    "admin_session",
    metadata,
    Column("key_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("auth_user.id", ondelete="CASCADE"), nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)

service_state = Table(
    "service_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# Bumped by triggers on every change ingestd must follow (connectors, datapoint activation,
# controllers); ingestd polls it, so a change made anywhere (API, admin UI, psql) is seen.
control_plane_version = Table(
    "control_plane_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
)

# Each message kind's tables: every message, and the latest one per datapoint.
HISTORY_TABLE = {
    VALUE: datapoint_value,
    SETPOINT: datapoint_setpoint,
    SCHEDULE: datapoint_schedule,
}
LAST_TABLE = {
    VALUE: datapoint_last_value,
    SETPOINT: datapoint_last_setpoint,
    SCHEDULE: datapoint_last_schedule,
}
HISTORY_TABLES = tuple(table.name for table in HISTORY_TABLE.values())

PERMISSION_MODELS = (
    "connector",
    "connectorlogentry",
    "connectorheartbeat",
    "datapoint",
    "datapointvalue",
    "datapointsetpoint",
    "datapointschedule",
    "controller",
    "controlleddatapoint",
    "user",
    "group",
    "token",
)
PERMISSION_ACTIONS = ("view", "add", "change", "delete")


def permission_codenames() -> list[tuple[str, str]]:
    """Every (codename, human name) pair, e.g. ("view_datapoint", "Can view datapoint")."""
    return [
        (f"{action}_{model}", f"Can {action} {model}")
        for model in PERMISSION_MODELS
        for action in PERMISSION_ACTIONS
    ]
