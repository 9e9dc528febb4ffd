"""ACTIVATE_CONTROL_EXTENSION: controllers and their controlled datapoints (sensor ->
actuator pairs). A change bumps the control-plane version (database triggers), and ingestd
republishes that controller's controlled datapoints."""

from __future__ import annotations

from sqladmin.filters import BooleanFilter
from sqlalchemy import select
from wtforms import ValidationError, validators

from readapi.admin.orm import ControlledDatapoint, Controller, Datapoint
from readapi.admin.request_context import CURRENT
from readapi.admin.validators import MqttName, Unique
from readapi.admin.views.base import BemcomModelView
from schema import tables


class ControllerAdmin(BemcomModelView, model=Controller):
    permission_model = "controller"
    name = "Controller"
    icon = "fa-solid fa-sliders"
    category = "Control"
    category_icon = "fa-solid fa-diagram-project"
    column_list = ["id", "name", "controlled_datapoints"]
    column_labels = {"controlled_datapoints": "Controlled datapoints"}
    column_searchable_list = ["name"]
    column_sortable_list = ["id", "name"]
    form_columns = ["name"]
    form_args = {
        "name": {
            "validators": [
                validators.InputRequired(),
                MqttName(),
                Unique(tables.controller.c.name, "controller with this name already exists."),
            ],
            "description": "The controller reads its pairs from NAME/controlled_datapoints.",
        }
    }


def _of_type(expected: str):
    def check(form, field) -> None:
        # sqladmin's select field holds the chosen primary key, as text.
        request = CURRENT.get()
        if request is None or not str(field.data or "").isdigit():
            return
        with request.engine.connect() as connection:
            chosen = connection.execute(
                select(tables.datapoint.c.type).where(tables.datapoint.c.id == int(field.data))
            ).scalar_one_or_none()
        if chosen is not None and chosen != expected:
            raise ValidationError(f"Select a datapoint of type {expected}.")

    return check


class ControlledDatapointAdmin(BemcomModelView, model=ControlledDatapoint):
    permission_model = "controlleddatapoint"
    name = "Controlled datapoint"
    icon = "fa-solid fa-arrows-left-right"
    category = "Control"
    category_icon = "fa-solid fa-diagram-project"
    column_list = ["id", "controller", "sensor_datapoint", "actuator_datapoint", "is_active"]
    column_labels = {
        "controller": "Controller",
        "sensor_datapoint": "Sensor",
        "actuator_datapoint": "Actuator",
        "is_active": "Active",
    }
    column_filters = [BooleanFilter(ControlledDatapoint.is_active, title="Active")]
    form_columns = ["controller", "sensor_datapoint", "actuator_datapoint", "is_active"]
    # A site has a thousand datapoints: pick them by typing part of a key, short name or
    # description, offered only among datapoints of the right type.
    form_ajax_refs = {
        "sensor_datapoint": {
            "fields": ("key_in_connector", "short_name", "description"),
            "order_by": "id",
            "where": Datapoint.type == "sensor",
        },
        "actuator_datapoint": {
            "fields": ("key_in_connector", "short_name", "description"),
            "order_by": "id",
            "where": Datapoint.type == "actuator",
        },
    }
    form_args = {
        "controller": {"validators": [validators.InputRequired()]},
        "sensor_datapoint": {"validators": [validators.InputRequired(), _of_type("sensor")]},
        "actuator_datapoint": {
            "validators": [validators.InputRequired(), _of_type("actuator")],
        },
    }
