"""Connectors: create, rename, delete (empty map first), and the connector's page."""

from __future__ import annotations

import json
import time

import paho.mqtt.client as mqtt
from sqlalchemy import insert

from schema.tables import connector_heartbeat, connector_log_entry
from tests.admin.conftest import AdminClient, AdminScene
from tests.conftest import MQTT_HOST, MQTT_PORT


def now_ms() -> int:
    return int(time.time() * 1000)


def test_create_shows_topics_and_validates(admin: AdminClient, admin_scene: AdminScene):
    created = admin.post("connector/create", {"name": "heatpump-1", "save": "Save"})
    assert created.status_code == 302
    connector_id = admin_scene.scalar("SELECT id FROM connector WHERE name = 'heatpump-1'")
    assert created.headers["location"].endswith(f"/admin/connector/details/{connector_id}")
    page = admin.get(f"connector/details/{connector_id}")
    assert page.status_code == 200
    for topic in (
        "heatpump-1/available_datapoints",
        "heatpump-1/datapoint_map",
        "heatpump-1/messages/#",
    ):
        assert topic in page.text
    assert "Connector heatpump-1 created" in page.text
    assert "No heartbeat received yet" in page.text
    assert "has not announced any datapoints yet" in page.text

    for bad, message in (
        ("", "This field is required."),
        ("a/b", "it is an MQTT topic level"),
        ("$sys", "reserved by MQTT"),
        ("heatpump-1", "connector with this name already exists."),
    ):
        response = admin.post("connector/create", {"name": bad, "save": "Save"})
        assert response.status_code == 400, bad
        assert 'class="invalid-feedback"' in response.text and message in response.text, bad
    assert admin_scene.scalar("SELECT count(*) FROM connector") == 1


def test_rename(admin: AdminClient, admin_scene: AdminScene):
    first = admin_scene.connector("first")
    admin_scene.connector("second")
    form = admin.get(f"connector/edit/{first}")
    assert "Renaming a connector changes all its topics" in form.text
    # Keeping its own name is fine; taking another's is not.
    assert (
        admin.post(f"connector/edit/{first}", {"name": "first", "save": "Save"}).status_code == 302
    )
    taken = admin.post(f"connector/edit/{first}", {"name": "second", "save": "Save"})
    assert taken.status_code == 400 and "already exists" in taken.text
    version = admin_scene.scalar("SELECT version FROM control_plane_version")
    assert (
        admin.post(f"connector/edit/{first}", {"name": "renamed", "save": "Save"}).status_code
        == 302
    )
    assert admin_scene.scalar(f"SELECT name FROM connector WHERE id = {first}") == "renamed"
    assert admin_scene.scalar("SELECT version FROM control_plane_version") > version


def test_delete_publishes_the_empty_map_first(
    admin: AdminClient, admin_scene: AdminScene, unique_name: str
):
    connector_id = admin_scene.connector(unique_name)
    admin_scene.datapoint(connector_id, "t1", is_active=True)
    received: list[bytes] = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    subscriber.on_message = lambda c, u, m: received.append(m.payload)
    subscriber.connect(MQTT_HOST, MQTT_PORT)
    subscriber.subscribe(f"{unique_name}/datapoint_map", qos=2)
    subscriber.loop_start()
    try:
        response = admin.delete(f"connector/delete?pks={connector_id}")
        assert response.status_code == 200
        assert response.text.endswith("/admin/connector/list")
        assert admin_scene.scalar("SELECT count(*) FROM connector") == 0
        assert admin_scene.scalar("SELECT count(*) FROM datapoint") == 0
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received and json.loads(received[-1]) == {"sensor": {}, "actuator": {}}
    finally:
        subscriber.loop_stop()
        # Leave no retained message behind on the shared broker.
        subscriber.publish(f"{unique_name}/datapoint_map", b"", retain=True).wait_for_publish(5)
        subscriber.disconnect()


def test_connector_page_heartbeat_logs_and_bulk_activation(
    admin: AdminClient, admin_scene: AdminScene
):
    connector_id = admin_scene.connector("plant")
    now = now_ms()
    with admin_scene.engine.begin() as connection:
        connection.execute(
            insert(connector_heartbeat).values(
                connector_id=connector_id, last_heartbeat=now - 120_000, next_heartbeat=now - 60_000
            )
        )
        connection.execute(
            insert(connector_log_entry),
            [
                {
                    "connector_id": connector_id,
                    "timestamp": now - 3000,
                    "msg": "started up",
                    "emitter": "main",
                    "level": 20,
                },
                {
                    "connector_id": connector_id,
                    "timestamp": now - 2000,
                    "msg": "device timeout",
                    "emitter": "poller",
                    "level": 40,
                },
            ],
        )
    ids = [
        admin_scene.datapoint(connector_id, "temp", example_value="21.5"),
        admin_scene.datapoint(connector_id, "humidity", example_value='"55 %"'),
        admin_scene.datapoint(connector_id, "setpoint", "actuator", example_value="true"),
    ]
    page = admin.get(f"connector/details/{connector_id}")
    assert page.status_code == 200
    assert "Heartbeat overdue by 1 min" in page.text or "Heartbeat overdue by 60 s" in page.text
    assert "started up" in page.text and "device timeout" in page.text
    assert "21.5" in page.text and "&#34;55 %&#34;" in page.text
    errors_only = admin.get(f"connector/details/{connector_id}?level=40")
    assert "device timeout" in errors_only.text and "started up" not in errors_only.text
    # Bad filter values fall back to every level rather than failing.
    assert admin.get(f"connector/details/{connector_id}?level=abc").status_code == 200

    version = admin_scene.scalar("SELECT version FROM control_plane_version")
    response = admin.post(
        f"connector/activation/{connector_id}",
        [("datapoint", ids[0]), ("datapoint", ids[2]), ("action", "activate")],
    )
    assert response.status_code == 302
    active = admin_scene.scalar("SELECT count(*) FROM datapoint WHERE is_active")
    assert active == 2
    assert admin_scene.scalar("SELECT version FROM control_plane_version") > version
    page = admin.get(f"connector/details/{connector_id}")
    assert "2 datapoints activated" in page.text and "(2 of 3 active)" in page.text

    admin.post(
        f"connector/activation/{connector_id}", [("datapoint", ids[0]), ("action", "deactivate")]
    )
    assert admin_scene.scalar("SELECT count(*) FROM datapoint WHERE is_active") == 1
    # Nothing selected, ids of another connector, junk: no change, a message.
    other = admin_scene.connector("other")
    foreign = admin_scene.datapoint(other, "x")
    admin.post(
        f"connector/activation/{connector_id}",
        [("datapoint", foreign), ("datapoint", "junk"), ("action", "activate")],
    )
    assert admin_scene.scalar(f"SELECT is_active FROM datapoint WHERE id = {foreign}") in (0, False)
    empty = admin.post(f"connector/activation/{connector_id}", {"action": "activate"})
    assert empty.status_code == 302
    assert (
        "Select one or more datapoints first."
        in admin.get(f"connector/details/{connector_id}").text
    )
    bad = admin.post(f"connector/activation/{connector_id}", {"action": "explode"})
    assert bad.status_code == 400
    assert admin.get("connector/details/999999").status_code == 404
    assert admin.get("connector/details/abc").status_code in (400, 404)
