"""Datapoints: list with search and filters, metadata form with validation, the page with
the last value, history (newest first, paginated) and the plot."""

from __future__ import annotations

import time

from sqlalchemy import insert, select

from schema.tables import datapoint, datapoint_last_value, datapoint_setpoint, datapoint_value
from tests.admin.conftest import AdminClient, AdminScene


def fill(scene: AdminScene) -> dict[str, int]:
    plant = scene.connector("plant")
    office = scene.connector("office")
    return {
        "temp": scene.datapoint(plant, "temp_room_1", short_name="Room 1", is_active=True),
        "valve": scene.datapoint(plant, "valve_1", "actuator", data_format="discrete_text"),
        "co2": scene.datapoint(office, "co2_level"),
    }


def test_list_search_and_filters(admin: AdminClient, admin_scene: AdminScene):
    ids = fill(admin_scene)
    now = int(time.time() * 1000)
    with admin_scene.engine.begin() as connection:
        connection.execute(
            insert(datapoint_last_value).values(
                datapoint_id=ids["temp"], time=now - 5000, value_num=21.5, value_raw=None
            )
        )
    everything = admin.get("datapoint/list")
    assert everything.status_code == 200
    assert all(k in everything.text for k in ("temp_room_1", "valve_1", "co2_level"))
    assert "21.5 (5 s ago)" in everything.text or "21.5 (6 s ago)" in everything.text

    def shown(query: str) -> set[str]:
        text = admin.get(f"datapoint/list?{query}").text
        return {k for k in ("temp_room_1", "valve_1", "co2_level") if k in text}

    assert shown("search=room") == {"temp_room_1"}
    assert shown("type=actuator") == {"valve_1"}
    assert shown("data_format=discrete_text") == {"valve_1"}
    assert shown("is_active=true") == {"temp_room_1"}
    office = admin_scene.scalar("SELECT id FROM connector WHERE name = 'office'")
    assert shown(f"connector_id={office}") == {"co2_level"}
    # Junk in the URL is no server error.
    assert shown("connector_id=abc") == set()
    assert admin.get("datapoint/list?page=abc").status_code == 400
    assert admin.get("datapoint/list?pageSize=-1").status_code == 400
    assert admin.get("datapoint/list?sortBy=nonsense&sort=asc").status_code in (200, 400)


def test_edit_validates_like_the_api(admin: AdminClient, admin_scene: AdminScene):
    ids = fill(admin_scene)
    valid = {
        "is_active": "y",
        "short_name": "Room 1",
        "data_format": "continuous_numeric",
        "description": "air temperature",
        "unit": "°C",
        "min_value": "10",
        "max_value": "30",
        "allowed_values": "",
        "save": "Save",
    }
    form = admin.get(f"datapoint/edit/{ids['temp']}")
    assert form.status_code == 200 and 'name="data_format"' in form.text
    for changes, message in (
        ({"min_value": "40"}, "The minimum value must not exceed the maximum value."),
        ({"data_format": "fancy"}, "Not a valid choice"),
        ({"min_value": "warm"}, "Not a valid float value"),
        ({"short_name": "x" * 31}, "Ensure this field has no more than 30 characters."),
        ({"allowed_values": '{"a": 1}'}, "Expected a list of items but got type &#34;dict&#34;."),
        ({"allowed_values": "[1, 2"}, "Enter a JSON list"),
    ):
        response = admin.post(f"datapoint/edit/{ids['temp']}", {**valid, **changes})
        assert response.status_code == 400, changes
        assert 'class="invalid-feedback"' in response.text and message in response.text, changes
    assert admin_scene.scalar(f"SELECT data_format FROM datapoint WHERE id = {ids['temp']}") == (
        "unknown"
    )
    saved = admin.post(
        f"datapoint/edit/{ids['temp']}", {**valid, "allowed_values": '["on", "off"]'}
    )
    assert saved.status_code == 302
    row = admin_scene.scalar(
        f"SELECT data_format || '|' || unit || '|' || allowed_values FROM datapoint "
        f"WHERE id = {ids['temp']}"
    )
    assert row == 'continuous_numeric|°C|["on", "off"]'
    # Datapoints come from their connector: there is no form to make one.
    assert admin.get("datapoint/create").status_code == 403


def test_page_with_last_value_history_and_plot(admin: AdminClient, admin_scene: AdminScene):
    ids = fill(admin_scene)
    start = 1_800_000_000_000
    with admin_scene.engine.begin() as connection:
        connection.execute(
            insert(datapoint_value),
            [
                {
                    "datapoint_id": ids["temp"],
                    "time": start + i * 60_000,
                    "value_num": 20 + i / 10,
                    "value_raw": None,
                }
                for i in range(30)
            ],
        )
        connection.execute(
            insert(datapoint_last_value).values(
                datapoint_id=ids["temp"], time=start + 29 * 60_000, value_num=22.9, value_raw=None
            )
        )
        connection.execute(
            insert(datapoint_setpoint).values(
                datapoint_id=ids["valve"], time=start, setpoint='[{"preferred_value": "open"}]'
            )
        )
    page = admin.get(f"datapoint/details/{ids['temp']}")
    assert page.status_code == 200
    text = page.text
    assert "22.9" in text and "2027-01-15 08:29:00 UTC" in text
    assert "<svg" in text and "polyline" in text
    # Newest first, 25 a page, then an Older link to the rest.
    assert text.index("2027-01-15 08:29:00") < text.index("2027-01-15 08:05:00")
    assert "2027-01-15 08:04:00" not in text
    older = f"before={start + 5 * 60_000}"
    assert older in text
    second = admin.get(f"datapoint/details/{ids['temp']}?kind=value&{older}").text
    assert "2027-01-15 08:04:00" in second and "2027-01-15 08:00:00" in second
    assert "2027-01-15 08:05:00" not in second
    # The actuator's setpoint history (both extensions are on in tests).
    valve = admin.get(f"datapoint/details/{ids['valve']}?kind=setpoint").text
    assert "Setpoint history" in valve and "preferred_value" in valve
    assert admin.get(f"datapoint/details/{ids['temp']}?kind=bogus&before=x").status_code == 200


def test_values_are_shown_as_the_api_answers_them(admin_scene: AdminScene, make_admin_client):
    """A connector-template value `"22.30"` is shown as the original shows it, 22.3, on the
    list, the datapoint's page (last value, history, setpoints) and the connector's page;
    with BEMCOM_EXACT_VALUES=TRUE as it was sent."""
    ids = fill(admin_scene)
    now = int(time.time() * 1000)
    with admin_scene.engine.connect() as connection:
        plant_id = connection.execute(
            select(datapoint.c.connector_id).where(datapoint.c.id == ids["temp"])
        ).scalar_one()
    with admin_scene.engine.begin() as connection:
        for table in (datapoint_value, datapoint_last_value):
            connection.execute(
                insert(table).values(
                    datapoint_id=ids["temp"], time=now, value_num=22.3, value_raw='"22.30"'
                )
            )
        connection.execute(
            insert(datapoint_setpoint).values(
                datapoint_id=ids["valve"],
                time=now,
                setpoint='[{"from_timestamp": null, "to_timestamp": null, '
                '"preferred_value": "21.50"}]',
            )
        )
    for exact in (False, True):
        client = make_admin_client(admin_scene, BEMCOM_EXACT_VALUES="TRUE" if exact else "FALSE")
        assert client.login("admin").status_code == 302
        pages = [
            client.get("datapoint/list").text,
            client.get(f"datapoint/details/{ids['temp']}").text,
            client.get(f"connector/details/{plant_id}").text,
        ]
        for page in pages:
            assert "22.3" in page
            assert ("22.30" in page) == exact
        valve = client.get(f"datapoint/details/{ids['valve']}?kind=setpoint").text
        assert ("21.50" in valve) == exact and "21.5" in valve
