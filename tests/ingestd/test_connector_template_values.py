"""A connector built on BEMCom's connector template, through the real broker and ingestd,
read back over REST as the original answers it.

The template (`service_templates/connectors/Python`) announces its datapoints with example
values and sends every value as a JSON string: `{"value": "22.3", "timestamp": ...}`. The
flow checked here is the template's: announce, be activated over REST, receive the datapoint
map, send values on the mapped topics, receive an actuator command. The template's own
process is not available offline; its traffic is sent as it sends it (Python json.dumps).
"""

from __future__ import annotations

import json
import warnings

import pytest
from litestar.testing import TestClient

from readapi.accounts import create_user
from readapi.app import create_app
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.support.ingest import Collector, now_ms, publish_json, publisher, wait_for

ADMIN = ("template-admin", "pass")
# As the template's sensors produce them: numbers as strings, in their own spelling.
SENT = ["22.3", "22.30", "1e3", " 21 ", "NaN", "on"]
ORIGINAL = ["22.3", "22.3", "1000.0", "21.0", "NaN", '"on"']


@pytest.fixture
def api(ingest):
    with ingest.engine.begin() as connection:
        create_user(connection, *ADMIN, superuser=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the test host name
        client = TestClient(create_app(ingest.settings), base_url="http://testserver")
    with client:
        client.auth = ADMIN
        yield client


def listed(api, connector: str, active: bool) -> dict[str, dict]:
    params = {"connector__name": connector, "is_active": "true" if active else "false"}
    response = api.get("/datapoint/", params=params)
    assert response.status_code == 200, response.text
    return {d["key_in_connector"]: d for d in response.json()}


def test_template_traffic_is_answered_as_the_original_answers_it(ingest, api):
    name = ingest.connector_name
    map_topic = f"{name}/datapoint_map"
    collector = Collector(MQTT_HOST, MQTT_PORT, [map_topic, f"{name}/messages/+/value"])
    ingest.start()
    try:
        with publisher(MQTT_HOST, MQTT_PORT) as client:
            announced = {"sensor": {"room_temp": "22.3"}, "actuator": {"set_temp": "21.0"}}
            publish_json(client, f"{name}/available_datapoints", announced)

            def announced_datapoints() -> dict[str, dict] | None:
                found = listed(api, name, active=False)
                return found if len(found) == 2 else None

            inactive = wait_for(announced_datapoints, 30)
            activation = [
                {k: v for k, v in inactive[key].items() if k != "id"} | {"is_active": True}
                for key in ("room_temp", "set_temp")
            ]
            assert api.put("/datapoint/", json=activation).status_code == 200

            def mapped() -> dict | None:
                for payload in reversed(collector.payloads(map_topic)):
                    document = json.loads(payload)
                    if "room_temp" in document.get("sensor", {}):
                        return document
                return None

            datapoint_map = wait_for(mapped, 30)
            sensor_topic = datapoint_map["sensor"]["room_temp"]
            sensor_id = int(sensor_topic.split("/")[-2])
            start = now_ms()
            for offset, text in enumerate(SENT):
                message = {"value": text, "timestamp": start + offset}
                publish_json(client, sensor_topic, json.dumps(message).encode())

            def history(**params: str) -> list[dict]:
                response = api.get(
                    f"/datapoint/{sensor_id}/value/", params={"timestamp__gte": start, **params}
                )
                assert response.status_code == 200, response.text
                return response.json()

            rows = wait_for(lambda: len(history()) == len(SENT) and history(), 30)
            assert [r["value"] for r in rows] == ORIGINAL
            assert [r["timestamp"] for r in rows] == [start + i for i in range(len(SENT))]
            # Nothing is lost: the exact text stays stored and can be asked for.
            exact = [r["value"] for r in history(values="exact")]
            assert exact == [json.dumps(text) for text in SENT]
            last = api.get("/datapoint/last_value/", params={"datapoint__id__in": sensor_id})
            assert last.json()["msgs_by_datapoint_id"][str(sensor_id)]["value"] == '"on"'

            # An actuator command reaches the connector on the mapped actuator topic.
            (actuator_topic,) = datapoint_map["actuator"]
            actuator_id = int(actuator_topic.split("/")[-2])
            command = {"value": "21.5", "timestamp": now_ms()}
            sent = api.post(f"/datapoint/{actuator_id}/value/", json=command)
            assert sent.status_code == 201, sent.text
            received = wait_for(lambda: collector.payloads(actuator_topic), 30)
            assert json.loads(received[-1])["value"] == 21.5
    finally:
        collector.close()
        with publisher(MQTT_HOST, MQTT_PORT) as client:
            publish_json(client, map_topic, b"", retain=True)
