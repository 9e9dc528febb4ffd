"""Datapoint and connector metadata in the database (SQLAlchemy Core, both backends)."""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import Connection, and_, delete, insert, select, update

from readapi.filters import DatapointFilter
from readapi.models import ConnectorRef, DatapointOut
from schema.limits import now_ms
from schema.tables import connector, datapoint


class DatapointMeta(msgspec.Struct, frozen=True):
    id: int
    connector_name: str
    key_in_connector: str
    type: str
    data_format: str
    short_name: str | None
    description: str
    min_value: float | None
    max_value: float | None
    allowed_values: str | None  # JSON text
    unit: str
    is_active: bool

    def allowed_values_list(self) -> Any:
        if self.allowed_values is None or self.allowed_values == "":
            return None
        try:
            return msgspec.json.decode(self.allowed_values)
        except msgspec.DecodeError:
            return None

    def to_out(self, with_active: bool = False) -> DatapointOut:
        return DatapointOut(
            id=self.id,
            connector=ConnectorRef(self.connector_name),
            key_in_connector=self.key_in_connector,
            type=self.type,
            data_format=self.data_format,
            short_name=self.short_name,
            description=self.description,
            min_value=self.min_value,
            max_value=self.max_value,
            allowed_values=self.allowed_values_list(),
            unit=self.unit,
            is_active=self.is_active if with_active else msgspec.UNSET,
        )


def _meta_select():
    d = datapoint.c
    return select(
        d.id,
        connector.c.name,
        d.key_in_connector,
        d.type,
        d.data_format,
        d.short_name,
        d.description,
        d.min_value,
        d.max_value,
        d.allowed_values,
        d.unit,
        d.is_active,
    ).join(connector, connector.c.id == d.connector_id)


def get_datapoint(connection: Connection, datapoint_id: int) -> DatapointMeta | None:
    row = connection.execute(_meta_select().where(datapoint.c.id == datapoint_id)).first()
    return DatapointMeta(*row) if row else None


def _column(name: str):
    return connector.c.name if name == "connector_name" else datapoint.c[name]


def list_datapoints(connection: Connection, filters: DatapointFilter) -> list[DatapointMeta]:
    statement = _meta_select().where(datapoint.c.is_active == filters.is_active)
    if filters.ids is not None:
        statement = statement.where(datapoint.c.id.in_(filters.ids))
    if filters.type is not None:
        statement = statement.where(datapoint.c.type == filters.type)
    for name, value in filters.exact:
        statement = statement.where(_column(name) == value)
    for name, value in filters.icontains:
        statement = statement.where(_column(name).icontains(value, autoescape=True))
    statement = statement.order_by(datapoint.c.id)
    return [DatapointMeta(*row) for row in connection.execute(statement)]


def find_datapoint(
    connection: Connection, connector_id: int, key_in_connector: str, type_: str
) -> DatapointMeta | None:
    row = connection.execute(
        _meta_select().where(
            and_(
                datapoint.c.connector_id == connector_id,
                datapoint.c.key_in_connector == key_in_connector,
                datapoint.c.type == type_,
            )
        )
    ).first()
    return DatapointMeta(*row) if row else None


def connector_id_by_name(connection: Connection, name: str) -> int | None:
    return connection.execute(
        select(connector.c.id).where(connector.c.name == name)
    ).scalar_one_or_none()


def create_connector(connection: Connection, name: str) -> int:
    return connection.execute(
        insert(connector).values(name=name, date_added=now_ms()).returning(connector.c.id)
    ).scalar_one()


def list_connectors(connection: Connection) -> list[tuple[int, str]]:
    return [
        (row.id, row.name)
        for row in connection.execute(select(connector.c.id, connector.c.name).order_by("id"))
    ]


def connector_name(connection: Connection, connector_id: int) -> str | None:
    """The name of the connector with this id; None if there is none."""
    return connection.execute(
        select(connector.c.name).where(connector.c.id == connector_id)
    ).scalar_one_or_none()


def delete_connector(connection: Connection, connector_id: int) -> None:
    connection.execute(delete(connector).where(connector.c.id == connector_id))


def insert_datapoint(connection: Connection, connector_id: int, values: dict) -> int:
    return connection.execute(
        insert(datapoint).values(connector_id=connector_id, **values).returning(datapoint.c.id)
    ).scalar_one()


def update_datapoint(connection: Connection, datapoint_id: int, values: dict) -> None:
    if values:
        connection.execute(update(datapoint).where(datapoint.c.id == datapoint_id).values(values))
