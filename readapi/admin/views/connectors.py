"""Connectors: create by name, rename, delete (empty map first), and the connector's page:
topics, heartbeat, recent log entries, and its datapoints to activate in bulk."""

from __future__ import annotations

import anyio.to_thread
import msgspec
from sqladmin import expose
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from wtforms import validators

from readapi.admin import queries
from readapi.admin.formatting import LOG_LEVELS, age, when
from readapi.admin.orm import Connector
from readapi.admin.permissions import has, viewable_kinds
from readapi.admin.validators import MqttName, Unique
from readapi.admin.views.base import BemcomModelView, notify, path_id
from readapi.connector_removal import remove_connector
from readapi.publisher import BrokerUnavailable
from schema import tables
from schema.limits import now_ms
from schema.topics import connector_topics

TOPIC_LABELS = {
    "mqtt_topic_logs": "Logs",
    "mqtt_topic_heartbeat": "Heartbeat",
    "mqtt_topic_available_datapoints": "Available datapoints",
    "mqtt_topic_datapoint_map": "Datapoint map",
    "mqtt_topic_raw_message_to_db": "Raw messages",
    "mqtt_topic_raw_message_reprocess": "Raw message reprocess",
    "mqtt_topic_datapoint_message_wildcard": "Datapoint messages",
}
MAX_SELECTED = 10_000


def heartbeat_cell(model: Connector, attribute: str) -> str:
    beat = model.heartbeat
    if beat is None:
        return "never"
    state = "OVERDUE" if beat.next_heartbeat < now_ms() else "ok"
    return f"{state}, last {age(beat.last_heartbeat)}"


class ConnectorAdmin(BemcomModelView, model=Connector):
    permission_model = "connector"
    name = "Connector"
    icon = "fa-solid fa-plug"
    column_list = ["id", "name", "n_active", "n_datapoints", "heartbeat", "date_added"]
    column_labels = {
        "id": "ID",
        "name": "Name",
        "n_active": "Active datapoints",
        "n_datapoints": "Available datapoints",
        "heartbeat": "Heartbeat",
        "date_added": "Added",
    }
    column_formatters = {
        "heartbeat": heartbeat_cell,
        "date_added": lambda m, a: when(m.date_added),
    }
    non_link_related_fields = ["heartbeat"]  # a status, not a page of its own
    column_searchable_list = ["name"]
    column_sortable_list = ["id", "name", "date_added"]
    column_default_sort = ("name", False)
    form_columns = ["name"]
    form_args = {
        "name": {
            "validators": [
                validators.InputRequired(),
                MqttName(),
                Unique(tables.connector.c.name, "connector with this name already exists."),
            ],
            "description": (
                "Every MQTT topic of the connector starts with its name, e.g. "
                "NAME/available_datapoints. Renaming a connector changes all its topics: "
                "the connector must then be configured with the new name."
            ),
        }
    }
    details_template = "bemcom/connector_details.html"

    async def on_model_change(self, data, model, is_created, request) -> None:
        if is_created:
            model.date_added = now_ms()

    async def after_model_change(self, data, model, is_created, request) -> Response | None:
        if is_created:
            notify(
                request,
                f"Connector {model.name} created. Start the connector with this name; its "
                "datapoints appear below once it announces them.",
                "success",
            )
            url = request.url_for("admin:details", identity=self.identity, pk=str(model.id))
            return RedirectResponse(url, status_code=302)
        return None

    async def delete_model(self, request: Request, pk) -> None:
        connector_id = int(pk) if str(pk).isdigit() else 0
        try:
            await anyio.to_thread.run_sync(remove_connector, self.services, connector_id)
        except BrokerUnavailable as error:
            # sqladmin shows this text above the list.
            raise RuntimeError(
                f"Not deleted: the message broker is not reachable ({error}), so the "
                "connector could not be told to stop sending."
            ) from None

    async def details_context(self, request: Request) -> dict:
        connector_id = path_id(request)
        if connector_id is None:
            return {}
        level = _level(request.query_params.get("level"))

        def load():
            with self.services.database.connect() as connection:
                return (
                    queries.heartbeat(connection, connector_id),
                    queries.log_entries(connection, connector_id, level),
                    queries.connector_datapoints(connection, connector_id),
                )

        heartbeat, logs, datapoints = await anyio.to_thread.run_sync(load)
        can_view_values = "value" in viewable_kinds(request)
        if not can_view_values:
            # Not sent to the template at all, so no change to it can show them.
            datapoints = [
                msgspec.structs.replace(d, last_time=None, last_num=None, last_raw=None)
                for d in datapoints
            ]
        return {
            "heartbeat": heartbeat,
            "now": now_ms(),
            "logs": logs,
            "log_level": level,
            "log_levels": LOG_LEVELS,
            "datapoints": datapoints,
            "can_activate": has(request, "change_datapoint"),
            "can_view_datapoints": has(request, "view_datapoint"),
            "can_view_values": can_view_values,
        }

    def topics(self, name: str) -> list[tuple[str, str]]:
        return [(TOPIC_LABELS[key], topic) for key, topic in connector_topics(name).items()]

    @expose("/activation/{pk}", methods=["POST"])
    async def activation(self, request: Request) -> Response:
        """Activate or deactivate the selected datapoints of one connector at once."""
        if not has(request, "change_datapoint"):
            raise HTTPException(403, "You do not have permission to change datapoints.")
        connector_id = path_id(request)
        if connector_id is None:
            raise HTTPException(404)
        form = await request.form()
        activate = form.get("action") == "activate"
        if form.get("action") not in ("activate", "deactivate"):
            raise HTTPException(400, "Choose Activate or Deactivate.")
        raw_ids = form.getlist("datapoint")
        ids = [int(v) for v in raw_ids if isinstance(v, str) and v.isdigit() and len(v) < 10]
        target = request.url_for("admin:details", identity=self.identity, pk=str(connector_id))
        if not ids or len(ids) > MAX_SELECTED:
            notify(request, "Select one or more datapoints first.", "warning")
            return RedirectResponse(target, status_code=302)

        def write() -> int:
            with self.services.database.begin() as connection:
                return queries.set_active(connection, connector_id, ids, activate)

        changed = await anyio.to_thread.run_sync(write)
        verb = "activated" if activate else "deactivated"
        notify(
            request,
            f"{changed} datapoint{'s' if changed != 1 else ''} {verb}. The datapoint map is "
            "republished to the connector within a second.",
            "success",
        )
        return RedirectResponse(target, status_code=302)


def _level(raw: str | None) -> int:
    if raw and raw.isdigit() and int(raw) in LOG_LEVELS:
        return int(raw)
    return 0
