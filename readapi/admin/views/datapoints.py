"""Datapoints: a searchable, filterable list with each one's last value and its age, the
metadata form, and a page per datapoint with its history and a plot of recent values."""

from __future__ import annotations

import functools

import anyio.to_thread
from sqladmin.filters import BooleanFilter, ForeignKeyFilter, StaticValuesFilter
from sqlalchemy import false
from starlette.requests import Request
from wtforms import FloatField, SelectField, TextAreaField, validators

from readapi.admin import queries
from readapi.admin.formatting import age, shorten, stored_value
from readapi.admin.orm import Connector, Datapoint
from readapi.admin.permissions import viewable_kinds
from readapi.admin.plot import line_chart
from readapi.admin.validators import JsonList, NoNul, NotAbove
from readapi.admin.views.base import BemcomModelView, path_id
from schema.limits import MAX_ID
from schema.tables import DATA_FORMATS
from schema.topics import MESSAGE_KINDS, datapoint_topic

HISTORY_PAGE = 25


class ConnectorFilter(ForeignKeyFilter):
    """sqladmin's filter, but an id that cannot exist (not a number, past 32 bits) matches
    nothing instead of failing."""

    async def get_filtered_query(self, query, value, model):
        chosen = isinstance(value, str) and value not in ("", "__all")
        if chosen and (not value.isdigit() or int(value) > MAX_ID):
            return query.where(false())
        return await super().get_filtered_query(query, value, model)


HIDDEN = "hidden"  # what a user without view_datapointvalue sees in place of a value


def last_value_cell(model: Datapoint, attribute: str, request: Request, exact: bool = False) -> str:
    if "value" not in viewable_kinds(request):
        return HIDDEN
    last = model.last_value
    if last is None:
        return "—"
    text = stored_value(last.value_num, last.value_raw, exact)
    return f"{shorten(text, 40)} ({age(last.time)})"


def _length(limit: int) -> validators.Length:
    return validators.Length(
        max=limit, message=f"Ensure this field has no more than {limit} characters."
    )


def history_kinds(settings) -> tuple[str, ...]:
    """Which histories are recorded: values with the history extension; setpoints and
    schedules only with the control extension too (as the REST endpoints)."""
    if not settings.activate_history_extension:
        return ()
    if settings.activate_control_extension:
        return MESSAGE_KINDS
    return ("value",)


class DatapointAdmin(BemcomModelView, model=Datapoint):
    permission_model = "datapoint"
    name = "Datapoint"
    icon = "fa-solid fa-gauge"
    can_create = False  # datapoints are announced by their connector
    # Narrow enough to show the last value beside the filters; short name, format and the
    # rest are on the datapoint's page (and searchable or filterable here).
    column_list = ["id", "key_in_connector", "connector", "type", "is_active", "last_value"]
    non_link_related_fields = ["last_value"]
    column_labels = {
        "id": "ID",
        "connector": "Connector",
        "type": "Type",
        "unit": "Unit",
        "description": "Description",
        "key_in_connector": "Key in connector",
        "short_name": "Short name",
        "data_format": "Data format",
        "is_active": "Active",
        "last_value": "Last value",
        "min_value": "Minimum value",
        "max_value": "Maximum value",
        "allowed_values": "Allowed values",
    }
    column_formatters = {"last_value": last_value_cell}

    @classmethod
    def configure(cls, settings) -> None:
        """Per site: the list shows last values in the mode the REST API answers them."""
        cls.column_formatters = {
            "last_value": functools.partial(last_value_cell, exact=settings.exact_values)
        }

    column_searchable_list = ["key_in_connector", "short_name", "description"]
    column_sortable_list = ["id", "key_in_connector", "type", "short_name", "data_format"]
    column_default_sort = ("id", False)
    column_filters = [
        ConnectorFilter(Datapoint.connector_id, Connector.name, title="Connector"),
        StaticValuesFilter(
            Datapoint.type, [("sensor", "sensor"), ("actuator", "actuator")], title="Type"
        ),
        StaticValuesFilter(
            Datapoint.data_format, [(f, f) for f in DATA_FORMATS], title="Data format"
        ),
        BooleanFilter(Datapoint.is_active, title="Active"),
    ]
    form_columns = [
        "short_name",
        "data_format",
        "description",
        "unit",
        "min_value",
        "max_value",
        "allowed_values",
        "is_active",  # last: its help text would crowd the field below it
    ]
    form_widget_args = {"data_format": {"class": "form-select"}}
    # sqladmin has no converter for Float columns.
    form_overrides = {
        "data_format": SelectField,
        "allowed_values": TextAreaField,
        "min_value": FloatField,
        "max_value": FloatField,
    }
    form_args = {
        "data_format": {"choices": [(f, f) for f in DATA_FORMATS]},
        "short_name": {"validators": [validators.Optional(), _length(30), NoNul()]},
        "description": {"validators": [NoNul()]},
        "unit": {"validators": [_length(255), NoNul()]},
        "min_value": {
            "validators": [
                validators.Optional(),
                NotAbove("max_value", "The minimum value must not exceed the maximum value."),
            ],
            "description": "For continuous numeric datapoints.",
        },
        "max_value": {"validators": [validators.Optional()]},
        "allowed_values": {
            "validators": [JsonList()],
            "description": 'For discrete datapoints: a JSON list, e.g. ["on", "off"] or [0, 1].',
        },
        "is_active": {
            "description": "Active datapoints are in the connector's datapoint map, and "
            "their messages are stored.",
        },
    }
    details_template = "bemcom/datapoint_details.html"

    async def on_model_change(self, data, model, is_created, request) -> None:
        # The columns are NOT NULL with "" for none, as in the original.
        for name in ("description", "unit"):
            if name in data and data[name] is None:
                data[name] = ""
        if data.get("allowed_values") is not None and not data["allowed_values"].strip():
            data["allowed_values"] = None

    async def details_context(self, request: Request) -> dict:
        datapoint_id = path_id(request)
        if datapoint_id is None:
            return {}
        # Only the kinds this user may read over REST are loaded at all, not merely hidden.
        viewable = viewable_kinds(request)
        kinds = tuple(k for k in history_kinds(self.settings) if k in viewable)
        kind = request.query_params.get("kind", "value")
        if kind not in kinds:
            kind = kinds[0] if kinds else ""
        before = _ms(request.query_params.get("before"))
        exact = self.settings.exact_values

        def load():
            with self.services.database.connect() as connection:
                last = {
                    k: queries.last_message(connection, datapoint_id, k, exact)
                    for k in MESSAGE_KINDS
                    if k in viewable
                }
                page = (
                    queries.history_page(
                        connection, datapoint_id, kind, before, HISTORY_PAGE, exact
                    )
                    if kind
                    else []
                )
                points = (
                    queries.recent_numeric_values(connection, datapoint_id)
                    if "value" in kinds
                    else []
                )
                return last, page, points

        last, page, points = await anyio.to_thread.run_sync(load)
        return {
            "last": last,
            "viewable_kinds": viewable,
            "history_kinds": kinds,
            "history_kind": kind,
            "history": page,
            "history_before": before,
            "history_next": page[-1].time if len(page) == HISTORY_PAGE else None,
            "plot": line_chart(points),
            "plot_points": len(points),
        }

    def topics(self, model: Datapoint) -> list[tuple[str, str]]:
        kinds = ("value",) if model.type == "sensor" else MESSAGE_KINDS
        return [(k, datapoint_topic(model.connector.name, model.id, k)) for k in kinds]


def _ms(raw: str | None) -> int | None:
    if raw is None or not raw.lstrip("-").isdigit() or len(raw) > 16:
        return None
    return int(raw)
