"""ACTIVATE_CONTROL_EXTENSION: controllers and controlled datapoints."""

from __future__ import annotations

from tests.admin.conftest import AdminClient, AdminScene


def test_controllers_and_pairs(admin: AdminClient, admin_scene: AdminScene):
    plant = admin_scene.connector("plant")
    sensor = admin_scene.datapoint(plant, "temp", "sensor")
    actuator = admin_scene.datapoint(plant, "valve", "actuator")
    bad = admin.post("controller/create", {"name": "ctl/1", "save": "Save"})
    assert bad.status_code == 400 and "it is an MQTT topic level" in bad.text
    assert admin.post("controller/create", {"name": "ctl-1", "save": "Save"}).status_code == 302
    controller = admin_scene.scalar("SELECT id FROM controller")
    version = admin_scene.scalar("SELECT version FROM control_plane_version")

    swapped = admin.post(
        "controlled-datapoint/create",
        {
            "controller": controller,
            "sensor_datapoint": actuator,
            "actuator_datapoint": sensor,
            "is_active": "y",
            "save": "Save",
        },
    )
    assert swapped.status_code == 400
    assert "Select a datapoint of type sensor." in swapped.text
    assert "Select a datapoint of type actuator." in swapped.text
    pair = {
        "controller": controller,
        "sensor_datapoint": sensor,
        "actuator_datapoint": actuator,
        "is_active": "y",
        "save": "Save",
    }
    assert admin.post("controlled-datapoint/create", pair).status_code == 302
    assert admin_scene.scalar("SELECT count(*) FROM controlled_datapoint WHERE is_active") == 1
    after_create = admin_scene.scalar("SELECT version FROM control_plane_version")
    assert after_create > version
    pair_id = admin_scene.scalar("SELECT id FROM controlled_datapoint")
    assert (
        admin.post(f"controlled-datapoint/edit/{pair_id}", {**pair, "is_active": ""}).status_code
        == 302
    )
    assert admin_scene.scalar("SELECT count(*) FROM controlled_datapoint WHERE is_active") == 0
    assert admin_scene.scalar("SELECT version FROM control_plane_version") > after_create
    listing = admin.get("controlled-datapoint/list").text
    assert "temp (sensor #" in listing and "valve (actuator #" in listing


def test_pair_datapoints_are_found_by_typing(admin: AdminClient, admin_scene: AdminScene):
    """The sensor and actuator pickers search (key, short name, description) among datapoints
    of their own type only, so a site's thousand datapoints are not one long list."""
    plant = admin_scene.connector("plant")
    sensors = [admin_scene.datapoint(plant, f"room_{i}_temp", "sensor") for i in range(30)]
    valve = admin_scene.datapoint(plant, "room_7_valve", "actuator")

    def lookup(name: str, term: str) -> list[dict]:
        response = admin.get(f"controlled-datapoint/ajax/lookup?name={name}&term={term}")
        assert response.status_code == 200, response.text
        return response.json()["results"]

    found = lookup("sensor_datapoint", "room_7")
    assert [int(row["id"]) for row in found] == [sensors[7]]
    assert lookup("actuator_datapoint", "room_7") == [
        {"id": str(valve), "text": f"room_7_valve (actuator #{valve})"}
    ]
    assert lookup("actuator_datapoint", "temp") == []
    form = admin.get("controlled-datapoint/create").text
    assert "ajax/lookup" in form
