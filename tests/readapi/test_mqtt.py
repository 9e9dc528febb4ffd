"""POSTs arrive on the real broker with the original's topic, payload, retain flag and QoS."""

from __future__ import annotations

import json

from tests.readapi.conftest import Scene
from tests.readapi.mqtt_helpers import Subscriber, clear_retained

JSON = {"Content-Type": "application/json"}


def test_post_value_setpoint_schedule_on_mqtt(pg_scene: Scene, make_client):
    client = make_client(pg_scene)
    base = f"{pg_scene.connector_name}/messages/101"
    live = Subscriber(f"{base}/#")
    try:
        response = client.post(
            "/datapoint/101/value/",
            content=b'{"value": "22.5", "timestamp": 1795840319411}',
            headers=JSON,
        )
        assert response.status_code == 201
        message = live.next()
        assert message.topic == f"{base}/value"
        assert message.payload == b'{"value": 22.5, "timestamp": 1795840319411}'
        assert message.qos == 0
        assert message.retain is False

        setpoint = {
            "setpoint": [{"from_timestamp": None, "to_timestamp": None, "preferred_value": "20"}],
            "timestamp": 1795840319412,
        }
        assert (
            client.post(
                "/datapoint/101/setpoint/", content=json.dumps(setpoint), headers=JSON
            ).status_code
            == 201
        )
        message = live.next()
        assert message.topic == f"{base}/setpoint"
        assert message.payload == (
            b'{"setpoint": [{"from_timestamp": null, "to_timestamp": null, '
            b'"preferred_value": 20}], "timestamp": 1795840319412}'
        )
        schedule = {
            "schedule": [
                {"from_timestamp": None, "to_timestamp": 1795843910439, "value": "19.5"},
                {"from_timestamp": 1795843910439, "to_timestamp": None, "value": "null"},
            ],
            "timestamp": 1795840310441,
        }
        assert (
            client.post(
                "/datapoint/101/schedule/", content=json.dumps(schedule), headers=JSON
            ).status_code
            == 201
        )
        message = live.next()
        assert message.topic == f"{base}/schedule"
        assert message.payload == (
            b'{"schedule": [{"from_timestamp": null, "to_timestamp": 1795843910439, '
            b'"value": 19.5}, {"from_timestamp": 1795843910439, "to_timestamp": null, '
            b'"value": null}], "timestamp": 1795840310441}'
        )
        # A rejected POST publishes nothing.
        sensor = client.post(
            "/datapoint/2/value/",
            content=b'{"value": "1", "timestamp": 1795840319411}',
            headers=JSON,
        )
        assert sensor.status_code == 400
        assert live.nothing_within(0.3)
    finally:
        live.close()
    # Setpoint and schedule are retained: a late subscriber gets them, flagged as retained.
    late = Subscriber(f"{base}/#")
    try:
        got = {m.topic: m for m in (late.next(), late.next())}
        assert set(got) == {f"{base}/setpoint", f"{base}/schedule"}
        assert all(m.retain for m in got.values())
        assert late.nothing_within(0.3)  # the value was not retained
    finally:
        late.close()
        clear_retained(f"{base}/setpoint")
        clear_retained(f"{base}/schedule")


def test_connector_create_list_delete(pg_scene: Scene, make_client, unique_name):
    client = make_client(pg_scene)
    name = f"{unique_name}-new"
    created = client.post("/connector/", content=json.dumps({"name": name}), headers=JSON)
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == name
    assert body["mqtt_topic_datapoint_map"] == f"{name}/datapoint_map"
    assert body["mqtt_topic_datapoint_message_wildcard"] == f"{name}/messages/#"
    assert isinstance(body["id"], int)
    listed = client.get("/connector/").json()
    assert [c["name"] for c in listed] == [pg_scene.connector_name, name]
    duplicate = client.post("/connector/", content=json.dumps({"name": name}), headers=JSON)
    assert duplicate.status_code == 400
    assert duplicate.json() == {"name": ["connector with this name already exists."]}
    bad = client.post("/connector/", content=b'{"name": "a/b"}', headers=JSON)
    assert bad.status_code == 400 and "MQTT topic level" in bad.json()["name"][0]
    assert client.post("/connector/", content=b"{}", headers=JSON).json() == {
        "name": ["This field is required."]
    }
    # A datapoint of the connector goes with it.
    pg_scene.execute(
        "INSERT INTO datapoint (connector_id, key_in_connector, type, is_active, data_format, "
        "description, unit) VALUES (:c, 'k', 'sensor', true, 'unknown', '', '')",
        {"c": body["id"]},
    )
    assert client.delete(f"/connector/{body['id']}/").status_code == 204
    assert [c["name"] for c in client.get("/connector/").json()] == [pg_scene.connector_name]
    assert (
        pg_scene.execute("SELECT count(*) FROM datapoint WHERE key_in_connector = 'k'")[0][0] == 0
    )
    retained = Subscriber(f"{name}/datapoint_map")
    try:
        message = retained.next()
        assert message.payload == b'{"sensor": {}, "actuator": {}}'
        assert message.retain is True
        assert message.qos == 2
    finally:
        retained.close()
        clear_retained(f"{name}/datapoint_map")
    assert client.delete(f"/connector/{body['id']}/").status_code == 404
