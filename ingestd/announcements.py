"""What ingestd publishes to connectors and controllers (PROTOCOL.md). Pure functions."""

from __future__ import annotations

import json
from collections.abc import Iterable

import msgspec

from ingestd.routing import ActiveDatapoint
from schema.topics import MESSAGE_KINDS, datapoint_topic


class ControlledPair(msgspec.Struct, frozen=True):
    controller_name: str
    sensor_connector: str
    sensor_id: int
    actuator_connector: str
    actuator_id: int


def datapoint_map(datapoints: Iterable[ActiveDatapoint]) -> dict:
    """{"sensor": {key: value topic}, "actuator": {value topic: key}} of active datapoints."""
    sensors, actuators = {}, {}
    for dp in sorted(datapoints, key=lambda d: d.id):
        topic = datapoint_topic(dp.connector_name, dp.id, "value")
        if dp.type == "sensor":
            sensors[dp.key_in_connector] = topic
        else:
            actuators[topic] = dp.key_in_connector
    return {"sensor": sensors, "actuator": actuators}


def controlled_datapoints(pairs: Iterable[ControlledPair]) -> list:
    """One entry per active sensor -> actuator pair of a controller."""
    return [
        {
            "sensor": {"value": datapoint_topic(p.sensor_connector, p.sensor_id, "value")},
            "actuator": {
                kind: datapoint_topic(p.actuator_connector, p.actuator_id, kind)
                for kind in MESSAGE_KINDS
            },
        }
        for p in sorted(pairs, key=lambda p: (p.sensor_id, p.actuator_id))
    ]


def encode(document: object) -> bytes:
    """Python json.dumps' spacing, byte for byte what the original service published."""
    return json.dumps(document).encode()
