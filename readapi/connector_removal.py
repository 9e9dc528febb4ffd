"""Deleting a connector, for the REST API and the admin UI alike.

The empty datapoint map is published (retained, QoS 2) before the rows go: the connector
stops sending before its datapoints disappear, and nothing arrives for topics no longer
known. If the broker cannot take the map, nothing is deleted. A connector whose name the
broker refuses (stored before names were checked) is deleted without one.
"""

from __future__ import annotations

import json

from readapi import datapoints_store as store
from readapi.services import Services
from schema.limits import MAX_ID
from schema.topics import EMPTY_DATAPOINT_MAP, broker_refusal, datapoint_map_topic

# Python json.dumps' spacing, as ingestd publishes it.
_EMPTY_MAP = json.dumps(EMPTY_DATAPOINT_MAP).encode()


def remove_connector(services: Services, connector_id: int) -> str | None:
    """Delete the connector; its name, or None if there is none with this id.

    Raises readapi.publisher.BrokerUnavailable when the empty map could not be published.
    """
    if not 0 < connector_id <= MAX_ID:
        return None
    with services.database.connect() as connection:
        name = store.connector_name(connection, connector_id)
    if name is None:
        return None
    # A name the broker refuses has no topics anyone could subscribe to, so there is no
    # connector to tell; publishing would only get readapi disconnected.
    if broker_refusal(name) is None:
        services.publisher.publish(datapoint_map_topic(name), _EMPTY_MAP, qos=2, retain=True)
    with services.database.begin() as connection:
        store.delete_connector(connection, connector_id)
    return name
