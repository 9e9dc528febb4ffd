"""The MQTT topics of connectors, datapoints and controllers (PROTOCOL.md)."""

from __future__ import annotations

MESSAGE_KINDS = ("value", "setpoint", "schedule")
# Topic levels a connector name cannot contain without breaking its own topics.
_FORBIDDEN = ("/", "+", "#", "\x00")


def connector_name_problem(name: str) -> str | None:
    """Why `name` cannot be a connector's (or controller's) name, or None if it can."""
    if not name or not name.strip():
        return "The name must not be empty."
    if name != name.strip():
        return "The name must not start or end with white space."
    if name.startswith("$"):
        return "The name must not start with '$' (reserved by MQTT)."
    for character in _FORBIDDEN:
        if character in name:
            return f"The name must not contain {character!r}: it is an MQTT topic level."
    if len(name.encode()) > 200:
        return "The name must be at most 200 bytes."
    return None


def connector_topics(name: str) -> dict[str, str]:
    return {
        "mqtt_topic_logs": f"{name}/logs",
        "mqtt_topic_heartbeat": f"{name}/heartbeat",
        "mqtt_topic_available_datapoints": f"{name}/available_datapoints",
        "mqtt_topic_datapoint_map": f"{name}/datapoint_map",
        "mqtt_topic_raw_message_to_db": f"{name}/raw_message_to_db",
        "mqtt_topic_raw_message_reprocess": f"{name}/raw_message_reprocess",
        "mqtt_topic_datapoint_message_wildcard": f"{name}/messages/#",
    }


def datapoint_topic(connector_name: str, datapoint_id: int, kind: str) -> str:
    return f"{connector_name}/messages/{datapoint_id}/{kind}"


def controlled_datapoints_topic(controller_name: str) -> str:
    return f"{controller_name}/controlled_datapoints"


def datapoint_map_topic(connector_name: str) -> str:
    return f"{connector_name}/datapoint_map"
