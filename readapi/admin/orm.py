"""ORM classes over the existing Core tables, for sqladmin (which works on mapped classes).

Each class maps a table of schema.tables as it is (`__table__`): the admin UI changes no
schema, and ingestd, the REST API and these pages keep reading and writing the same rows.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import DeclarativeBase, column_property, relationship

from schema import tables


class Base(DeclarativeBase):
    pass


class Connector(Base):
    __table__ = tables.connector

    # Deleting a connector deletes its rows through the foreign keys' ON DELETE CASCADE; the
    # ORM must not try to null them out first.
    datapoints = relationship("Datapoint", back_populates="connector", passive_deletes="all")
    heartbeat = relationship("ConnectorHeartbeat", uselist=False, passive_deletes="all")
    # Counted in SQL for each listed connector, rather than loading its datapoints to count.
    n_datapoints = column_property(
        select(func.count(tables.datapoint.c.id))
        .where(tables.datapoint.c.connector_id == tables.connector.c.id)
        .correlate_except(tables.datapoint)
        .scalar_subquery()
    )
    n_active = column_property(
        select(func.count(tables.datapoint.c.id))
        .where(
            tables.datapoint.c.connector_id == tables.connector.c.id,
            tables.datapoint.c.is_active.is_(True),
        )
        .correlate_except(tables.datapoint)
        .scalar_subquery()
    )

    def __str__(self) -> str:
        return self.name


class ConnectorHeartbeat(Base):
    __table__ = tables.connector_heartbeat


class ConnectorLogEntry(Base):
    __table__ = tables.connector_log_entry


class Datapoint(Base):
    __table__ = tables.datapoint

    connector = relationship(Connector, back_populates="datapoints")
    last_value = relationship("DatapointLastValue", uselist=False, passive_deletes="all")

    def __str__(self) -> str:
        label = self.short_name or self.key_in_connector
        return f"{label} ({self.type} #{self.id})"


class DatapointLastValue(Base):
    __table__ = tables.datapoint_last_value


class Controller(Base):
    __table__ = tables.controller

    controlled_datapoints = relationship(
        "ControlledDatapoint", back_populates="controller", passive_deletes="all"
    )

    def __str__(self) -> str:
        return self.name


class ControlledDatapoint(Base):
    __table__ = tables.controlled_datapoint

    controller = relationship(Controller, back_populates="controlled_datapoints")
    sensor_datapoint = relationship(
        Datapoint, foreign_keys=[tables.controlled_datapoint.c.sensor_datapoint_id]
    )
    actuator_datapoint = relationship(
        Datapoint, foreign_keys=[tables.controlled_datapoint.c.actuator_datapoint_id]
    )

    def __str__(self) -> str:
        return f"{self.sensor_datapoint_id} -> {self.actuator_datapoint_id}"


class Permission(Base):
    __table__ = tables.auth_permission

    def __str__(self) -> str:
        return f"{self.codename}"


class Group(Base):
    __table__ = tables.auth_group

    permissions = relationship(Permission, secondary=tables.auth_group_permissions)

    def __str__(self) -> str:
        return self.name


class User(Base):
    __table__ = tables.auth_user

    groups = relationship(Group, secondary=tables.auth_user_groups)
    user_permissions = relationship(Permission, secondary=tables.auth_user_permissions)

    def __str__(self) -> str:
        return self.username


class ApiToken(Base):
    __table__ = tables.api_token

    user = relationship(User)

    def __str__(self) -> str:
        # Only a prefix of the hash: enough to tell tokens apart, useless to an attacker.
        return f"{self.label or 'token'} ({self.key_hash[:8]}…)"
