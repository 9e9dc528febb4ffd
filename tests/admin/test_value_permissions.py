"""Issue 12, finding 7: the admin UI shows message contents (last value, setpoint and
schedule, history, plot) only to users who may read them over REST: view_datapointvalue,
view_datapointsetpoint, view_datapointschedule. view_datapoint alone shows metadata."""

from __future__ import annotations

import pytest
from sqlalchemy import insert

from schema.tables import (
    datapoint_last_schedule,
    datapoint_last_setpoint,
    datapoint_last_value,
    datapoint_schedule,
    datapoint_setpoint,
    datapoint_value,
)
from tests.admin.conftest import AdminClient, AdminScene

START = 1_800_000_000_000
# Markers that appear on a page only if the message contents are rendered.
VALUE_MARKER = "73.625"
HISTORY_MARKER = "41.0625"
SETPOINT_MARKER = "sp-marker-7"
SCHEDULE_MARKER = "sc-marker-9"
SETPOINT = f'[{{"preferred_value": "{SETPOINT_MARKER}"}}]'
SCHEDULE = f'[{{"from_timestamp": null, "to_timestamp": null, "value": "{SCHEDULE_MARKER}"}}]'


def fill(scene: AdminScene) -> dict[str, int]:
    plant = scene.connector("plant")
    ids = {
        "plant": plant,
        "sensor": scene.datapoint(plant, "temp_room_1", is_active=True),
        "actuator": scene.datapoint(plant, "valve_1", "actuator", is_active=True),
    }
    with scene.engine.begin() as connection:
        rows = [
            {"datapoint_id": ids["sensor"], "time": START + i * 60_000, "value_num": 41 + i / 16}
            for i in range(10)
        ]
        rows.append(
            {"datapoint_id": ids["sensor"], "time": START + 10 * 60_000, "value_num": 73.625}
        )
        connection.execute(insert(datapoint_value), [{**r, "value_raw": None} for r in rows])
        connection.execute(
            insert(datapoint_last_value).values(
                datapoint_id=ids["sensor"], time=START + 10 * 60_000, value_num=73.625
            )
        )
        for table, last, column, text in (
            (datapoint_setpoint, datapoint_last_setpoint, "setpoint", SETPOINT),
            (datapoint_schedule, datapoint_last_schedule, "schedule", SCHEDULE),
        ):
            row = {"datapoint_id": ids["actuator"], "time": START, column: text}
            connection.execute(insert(table).values(**row))
            connection.execute(insert(last).values(**row))
    return ids


def pages(client: AdminClient, ids: dict[str, int]) -> dict[str, str]:
    """Every page that could show a message's contents, as this user sees it."""
    sensor, actuator = ids["sensor"], ids["actuator"]
    urls = {
        "list": "datapoint/list",
        "connector": f"connector/details/{ids['plant']}",
        "sensor": f"datapoint/details/{sensor}",
        "sensor_values": f"datapoint/details/{sensor}?kind=value",
        "actuator": f"datapoint/details/{actuator}",
        "setpoints": f"datapoint/details/{actuator}?kind=setpoint",
        "schedules": f"datapoint/details/{actuator}?kind=schedule",
    }
    shown = {}
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        shown[name] = response.text
    return shown


def everything(shown: dict[str, str]) -> str:
    return "\n".join(shown.values())


@pytest.fixture
def add_staff(admin_scene: AdminScene, make_admin_client):
    def add(username: str, *permissions: str) -> AdminClient:
        with admin_scene.engine.begin() as connection:
            AdminScene._staff(
                connection, username, "view_connector", "view_datapoint", *permissions
            )
        client = make_admin_client(admin_scene)
        assert client.login(username).status_code == 302
        return client

    return add


def test_metadata_only_staff_see_no_message_contents(admin_scene: AdminScene, add_staff):
    ids = fill(admin_scene)
    shown = pages(add_staff("metadata_only"), ids)
    text = everything(shown)
    for marker in (VALUE_MARKER, HISTORY_MARKER, SETPOINT_MARKER, SCHEDULE_MARKER):
        assert marker not in text, marker
    assert "<svg" not in text  # no plot
    assert "history</a>" not in text  # no history tabs
    # The pages still work and say why nothing is shown.
    assert "temp_room_1" in shown["list"] and "hidden" in shown["list"]
    assert "Last value" not in shown["connector"] and "valve_1" in shown["connector"]
    assert "hidden: you may not view values" in shown["sensor"]
    assert "hidden: you may not view setpoints" in shown["actuator"]
    assert "hidden: you may not view schedules" in shown["actuator"]


def test_each_permission_shows_its_own_kind_only(
    admin_scene: AdminScene, add_staff, admin: AdminClient
):
    ids = fill(admin_scene)

    values = everything(pages(add_staff("values", "view_datapointvalue"), ids))
    assert VALUE_MARKER in values and HISTORY_MARKER in values and "<svg" in values
    assert "Value history" in values
    assert SETPOINT_MARKER not in values and SCHEDULE_MARKER not in values
    assert "Setpoint history" not in values and "Schedule history" not in values

    setpoints = pages(add_staff("setpoints", "view_datapointsetpoint"), ids)
    text = everything(setpoints)
    assert SETPOINT_MARKER in setpoints["actuator"] and SETPOINT_MARKER in setpoints["setpoints"]
    assert "Setpoint history" in text and "Value history" not in text
    assert VALUE_MARKER not in text and SCHEDULE_MARKER not in text and "<svg" not in text

    schedules = everything(pages(add_staff("schedules", "view_datapointschedule"), ids))
    assert SCHEDULE_MARKER in schedules and "Schedule history" in schedules
    assert VALUE_MARKER not in schedules and SETPOINT_MARKER not in schedules

    # The superuser sees all of it, on the same pages.
    full = everything(pages(admin, ids))
    for marker in (VALUE_MARKER, HISTORY_MARKER, SETPOINT_MARKER, SCHEDULE_MARKER):
        assert marker in full, marker
    assert "<svg" in full and "Last value" in full
