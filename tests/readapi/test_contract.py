"""Every captured response of CONTRACT.md, byte for byte, on PostgreSQL and SQLite.

Where CONTRACT.md lists an improvement (numbers keep their text, JSON 404 for a non-integer
id, `interval` on SQLite), the expected bytes are the improved ones.
"""

from __future__ import annotations

import json

import pytest

from tests.readapi.conftest import Scene, basic

JSON = "application/json"


def put(client, path: str, body) -> dict:
    response = client.put(path, content=json.dumps(body), headers={"Content-Type": JSON})
    assert response.status_code == 200, response.text
    return response.json()


def post_raw(client, path: str, body: str):
    return client.post(path, content=body.encode(), headers={"Content-Type": JSON})


def assert_bytes(response, status: int, expected: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(JSON)
    assert response.content == expected.encode()


def test_datapoint_list_filtered(client, scene: Scene):
    name = scene.connector_name
    response = client.get("/datapoint/?id__in=1%2C101")
    assert_bytes(
        response,
        200,
        f'[{{"id":1,"connector":{{"name":"{name}"}},"key_in_connector":"bench_s_0000",'
        '"type":"sensor","data_format":"unknown","short_name":null,"description":"",'
        '"min_value":null,"max_value":null,"allowed_values":null,"unit":""},'
        f'{{"id":101,"connector":{{"name":"{name}"}},"key_in_connector":"bench_a_00",'
        '"type":"actuator","data_format":"unknown","short_name":null,"description":"",'
        '"min_value":null,"max_value":null,"allowed_values":null,"unit":""}]',
    )


ROUND_TRIP = [
    21.5,
    0.30000000000000004,
    -1.25e-07,
    "hello world",
    "Grüße ✓",
    True,
    False,
    None,
    42,
    "18.0",
    2**53 + 1,
]
T0 = 1795840275488


@pytest.mark.parametrize("exact", [False, True], ids=["original", "exact"])
def test_value_history_round_trip(make_client, scene: Scene, exact: bool):
    client = make_client(scene, BEMCOM_EXACT_VALUES="TRUE" if exact else "FALSE")
    # As a Python connector sends them: json.dumps of each value (non-ASCII escaped).
    body = [{"value": json.dumps(v), "timestamp": T0 + i} for i, v in enumerate(ROUND_TRIP)]
    assert put(client, "/datapoint/2/value/", body) == {"msgs_created": 11, "msgs_updated": 0}
    response = client.get(f"/datapoint/2/value/?timestamp__gte={T0}&timestamp__lte={T0 + 10}")
    # By default the numeric string "18.0" is answered as the original answers it, the float
    # 18.0; in exact mode as the string it was sent as.
    numeric_string = '"\\"18.0\\""' if exact else '"18.0"'
    assert_bytes(
        response,
        200,
        '[{"value":"21.5","timestamp":1795840275488},'
        '{"value":"0.30000000000000004","timestamp":1795840275489},'
        '{"value":"-1.25e-07","timestamp":1795840275490},'
        '{"value":"\\"hello world\\"","timestamp":1795840275491},'
        '{"value":"\\"Gr\\\\u00fc\\\\u00dfe \\\\u2713\\"","timestamp":1795840275492},'
        '{"value":"true","timestamp":1795840275493},'
        '{"value":"false","timestamp":1795840275494},'
        '{"value":"null","timestamp":1795840275495},'
        # Kept in both modes (only the number's text differs from the original's "42.0" and
        # "9007199254740992.0"; README "What differs").
        '{"value":"42","timestamp":1795840275496},'
        f'{{"value":{numeric_string},"timestamp":1795840275497}},'
        '{"value":"9007199254740993","timestamp":1795840275498}]',
    )
    empty = client.get("/datapoint/2/value/?timestamp__gte=1&timestamp__lt=2")
    assert_bytes(empty, 200, "[]")
    # The strict bounds exclude the ends.
    inner = client.get(f"/datapoint/2/value/?timestamp__gt={T0}&timestamp__lt={T0 + 10}")
    assert [m["timestamp"] for m in inner.json()] == list(range(T0 + 1, T0 + 10))


def test_last_value_filtered(client, scene: Scene):
    put(client, "/datapoint/1/value/", [{"value": "470.0", "timestamp": 1795840052230}])
    put(client, "/datapoint/2/value/", [{"value": str(2**53 + 1), "timestamp": 1795840275498}])
    put(client, "/datapoint/101/value/", [{"value": "null", "timestamp": 1795840277094}])
    # An older message does not replace the last value.
    put(client, "/datapoint/1/value/", [{"value": "1.0", "timestamp": 1795840052229}])
    response = client.get("/datapoint/last_value/?datapoint__id__in=1%2C2%2C101")
    assert_bytes(
        response,
        200,
        '{"msgs_by_datapoint_id":{"1":{"value":"470.0","timestamp":1795840052230},'
        '"2":{"value":"9007199254740993","timestamp":1795840275498},'
        '"101":{"value":"null","timestamp":1795840277094}}}',
    )
    only_new = client.get("/datapoint/last_value/?timestamp__gte=1795840275498")
    assert set(only_new.json()["msgs_by_datapoint_id"]) == {"2", "101"}


SETPOINT = (
    '{"setpoint":[{"from_timestamp":null,"to_timestamp":1795843877261,'
    '"preferred_value":"21.0"}],"timestamp":1795840277261}'
)
SCHEDULE = (
    '{"schedule":[{"from_timestamp":null,"to_timestamp":1795843877477,"value":"19.5"},'
    '{"from_timestamp":1795843877477,"to_timestamp":null,"value":"null"}],'
    '"timestamp":1795840277477}'
)


def test_setpoint_and_schedule_history_and_last(client, scene: Scene):
    put(client, "/datapoint/101/setpoint/", [json.loads(SETPOINT)])
    put(client, "/datapoint/101/schedule/", [json.loads(SCHEDULE)])
    assert_bytes(client.get("/datapoint/101/setpoint/"), 200, f"[{SETPOINT}]")
    assert_bytes(client.get("/datapoint/101/schedule/"), 200, f"[{SCHEDULE}]")
    assert_bytes(
        client.get("/datapoint/last_setpoint/"),
        200,
        f'{{"msgs_by_datapoint_id":{{"101":{SETPOINT}}}}}',
    )
    assert_bytes(
        client.get("/datapoint/last_schedule/"),
        200,
        f'{{"msgs_by_datapoint_id":{{"101":{SCHEDULE}}}}}',
    )


def test_post_value_setpoint_schedule_echo(client, scene: Scene):
    response = post_raw(
        client, "/datapoint/101/value/", '{"value": "\\"on\\"", "timestamp": 1795840310439}'
    )
    assert_bytes(response, 201, '{"value":"on","timestamp":1795840310439}')
    response = post_raw(
        client,
        "/datapoint/101/setpoint/",
        '{"setpoint": [{"from_timestamp": null, "to_timestamp": 1795843910439, '
        '"preferred_value": "21.0"}], "timestamp": 1795840310440}',
    )
    assert_bytes(
        response,
        201,
        '{"setpoint":[{"from_timestamp":null,"to_timestamp":1795843910439,'
        '"preferred_value":21.0}],"timestamp":1795840310440}',
    )
    response = post_raw(
        client,
        "/datapoint/101/schedule/",
        '{"schedule": [{"from_timestamp": null, "to_timestamp": 1795843910439, "value": "19.5"}, '
        '{"from_timestamp": 1795843910439, "to_timestamp": null, "value": "null"}], '
        '"timestamp": 1795840310441}',
    )
    assert_bytes(
        response,
        201,
        '{"schedule":[{"from_timestamp":null,"to_timestamp":1795843910439,"value":19.5},'
        '{"from_timestamp":1795843910439,"to_timestamp":null,"value":null}],'
        '"timestamp":1795840310441}',
    )
    raw_number = post_raw(
        client, "/datapoint/101/value/", '{"value": 21.5, "timestamp": 1795840310444}'
    )
    assert_bytes(raw_number, 201, '{"value":21.5,"timestamp":1795840310444}')
    # What was published is stored as ingestd stores it, and reads back in the GET shape.
    last = client.get("/datapoint/last_value/?datapoint__id__in=101").json()
    assert last == {"msgs_by_datapoint_id": {"101": {"value": "21.5", "timestamp": 1795840310444}}}
    assert client.get("/datapoint/101/setpoint/").json() == [
        {
            "setpoint": [
                {"from_timestamp": None, "to_timestamp": 1795843910439, "preferred_value": "21.0"}
            ],
            "timestamp": 1795840310440,
        }
    ]


def test_put_value_history_then_delete(client, scene: Scene):
    first = client.put(
        "/datapoint/2/value/",
        content=b'[{"value": "1.5", "timestamp": 1795840210439}, '
        b'{"value": "\\"x\\"", "timestamp": 1795840211439}]',
        headers={"Content-Type": JSON},
    )
    assert_bytes(first, 200, '{"msgs_created":2,"msgs_updated":0}')
    again = client.put(
        "/datapoint/2/value/",
        content=b'[{"value": "2.5", "timestamp": 1795840210439}]',
        headers={"Content-Type": JSON},
    )
    assert_bytes(again, 200, '{"msgs_created":0,"msgs_updated":1}')
    assert client.get("/datapoint/2/value/").json()[0] == {
        "value": "2.5",
        "timestamp": 1795840210439,
    }
    one = client.get("/datapoint/2/value/1795840211439/")
    assert_bytes(one, 200, '{"value":"\\"x\\"","timestamp":1795840211439}')
    single = client.get("/datapoint/2/")
    assert single.status_code == 200 and single.json()["key_in_connector"] == "bench_s_0001"
    assert client.get("/datapoint/999/").json() == {"detail": "Not found."}
    deleted = client.delete("/datapoint/2/value/1795840211439/")
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert_bytes(client.delete("/datapoint/2/value/1795840211439/"), 404, '{"detail":"Not found."}')
    assert [m["timestamp"] for m in client.get("/datapoint/2/value/").json()] == [1795840210439]
    assert client.get("/datapoint/2/value/1795840211439/").status_code == 404


def test_auth_errors(client, scene: Scene):
    anonymous = client.get("/datapoint/", headers={"Authorization": ""})
    assert_bytes(anonymous, 401, '{"detail":"Authentication credentials were not provided."}')
    assert anonymous.headers["www-authenticate"] == 'Basic realm="api"'
    wrong = client.get("/datapoint/", headers=basic("admin", "wrong"))
    assert_bytes(wrong, 401, '{"detail":"Invalid username/password."}')
    assert wrong.headers["www-authenticate"] == 'Basic realm="api"'
    unknown_user = client.get("/datapoint/", headers=basic("ghost", "pass"))
    assert_bytes(unknown_user, 401, '{"detail":"Invalid username/password."}')
    token = client.get("/datapoint/", headers={"Authorization": "Bearer nope"})
    assert_bytes(token, 401, '{"detail":"Invalid token."}')
    good = client.get("/datapoint/", headers={"Authorization": f"Bearer {scene.admin_token}"})
    assert good.status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "expected"),
    [
        ("GET", "/datapoint/999999/value/", None, 404, '{"detail":"Not found."}'),
        (
            "POST",
            "/datapoint/999999/value/",
            '{"value": "1", "timestamp": 1795840310439}',
            404,
            '{"detail":"Not found."}',
        ),
        # Improvement: JSON, not Django's HTML page.
        ("GET", "/datapoint/abc/value/", None, 404, '{"detail":"Not found."}'),
        ("GET", "/datapoint/99999999999999999999/value/", None, 404, '{"detail":"Not found."}'),
        (
            "POST",
            "/datapoint/101/value/",
            '{"value": "1", "timest',
            400,
            '{"detail":"JSON parse error - Unterminated string starting at: '
            'line 1 column 16 (char 15)"}',
        ),
        (
            "POST",
            "/datapoint/101/value/",
            '{"value": "not json", "timestamp": 1795840310439}',
            400,
            '{"value":["Value (not json) cannot be parsed as JSON."]}',
        ),
        (
            "POST",
            "/datapoint/101/value/",
            '{"value": "1"}',
            400,
            '{"timestamp":["This field is required."]}',
        ),
        (
            "POST",
            "/datapoint/101/value/",
            '{"value": "1", "timestamp": 1795840310}',
            400,
            '{"timestamp":["Timestamp (1795840310) seems unreasonably low. Check if it is in '
            'milliseconds and contact your adminstrator if this is the case."]}',
        ),
        (
            "POST",
            "/datapoint/101/value/",
            '{"value": "1", "timestamp": "abc"}',
            400,
            '{"timestamp":["A valid integer is required."]}',
        ),
        (
            "POST",
            "/datapoint/2/value/",
            '{"value": "1", "timestamp": 1795840310439}',
            400,
            '["This message can only be written for an actuator datapoint."]',
        ),
        (
            "POST",
            "/datapoint/101/value/",
            '[{"value": "1", "timestamp": 1795840310439}]',
            400,
            '{"non_field_errors":["Invalid data. Expected a dictionary, but got list."]}',
        ),
        (
            "POST",
            "/datapoint/101/setpoint/",
            '{"setpoint": [{"preferred_value": "1"}], "timestamp": 1795840310439}',
            400,
            '{"setpoint":[{"from_timestamp":["This field is required."],'
            '"to_timestamp":["This field is required."]}]}',
        ),
        (
            "POST",
            "/datapoint/101/schedule/",
            '{"schedule": "x", "timestamp": 1795840310439}',
            400,
            '{"schedule":{"non_field_errors":'
            '["Expected a list of items but got type \\"str\\"."]}}',
        ),
        (
            "GET",
            "/datapoint/2/value/?timestamp__gte=abc",
            None,
            400,
            '{"timestamp__gte":["Enter a number."]}',
        ),
    ],
)
def test_error_bodies(client, scene: Scene, method, path, body, status, expected):
    response = client.request(
        method,
        path,
        content=body.encode() if body is not None else None,
        headers={"Content-Type": JSON} if body is not None else None,
    )
    assert_bytes(response, status, expected)


def test_metadata_update_and_value_checks(client, scene: Scene):
    name = scene.connector_name
    response = client.put(
        "/datapoint/",
        content=json.dumps(
            [
                {
                    "connector": {"name": name},
                    "key_in_connector": "bench_a_00",
                    "type": "actuator",
                    "data_format": "continuous_numeric",
                    "min_value": 10,
                    "max_value": 30,
                }
            ]
        ),
        headers={"Content-Type": JSON},
    )
    assert_bytes(
        response,
        200,
        f'[{{"id":101,"connector":{{"name":"{name}"}},"key_in_connector":"bench_a_00",'
        '"type":"actuator","data_format":"continuous_numeric","short_name":null,'
        '"description":"","min_value":10.0,"max_value":30.0,"allowed_values":null,"unit":""}]',
    )
    too_large = post_raw(
        client, "/datapoint/101/value/", '{"value": "35", "timestamp": 1795840310449}'
    )
    assert_bytes(
        too_large,
        400,
        '{"value":["Value (35) for numeric datapoint is larger then maximum allowed value '
        '(30.0)."]}',
    )
    text = post_raw(
        client, "/datapoint/101/value/", '{"value": "\\"on\\"", "timestamp": 1795840310450}'
    )
    assert_bytes(
        text,
        400,
        '{"value":["Value (on) for numeric datapoint cannot be parsed to float or int."]}',
    )
    setpoint = post_raw(
        client,
        "/datapoint/101/setpoint/",
        '{"setpoint": [{"from_timestamp": null, "to_timestamp": null, "preferred_value": "21"}], '
        '"timestamp": 1795840310451}',
    )
    assert_bytes(
        setpoint,
        400,
        '{"setpoint":["Key \'min_value\' is missing in Setpoint Item ({\\"from_timestamp\\": '
        'null, \\"to_timestamp\\": null, \\"preferred_value\\": \\"21\\"})."]}',
    )
    too_small = post_raw(
        client, "/datapoint/101/value/", '{"value": "5", "timestamp": 1795840310452}'
    )
    assert too_small.json() == {
        "value": ["Value (5) for numeric datapoint is smaller then minimum allowed value (10.0)."]
    }
    ok = post_raw(client, "/datapoint/101/value/", '{"value": "25", "timestamp": 1795840310453}')
    assert_bytes(ok, 201, '{"value":25,"timestamp":1795840310453}')


def test_interval_on_every_backend(client, scene: Scene):
    """The original answers HTTP 500 on SQLite; here both backends answer the buckets."""
    body = [{"value": json.dumps(v), "timestamp": T0 + i} for i, v in enumerate(ROUND_TRIP)]
    put(client, "/datapoint/2/value/", body)
    response = client.get(
        "/datapoint/2/value/?interval=1+minute&timestamp__gte=1795840275488"
        "&timestamp__lte=1795840275498"
    )
    assert response.status_code == 200
    numbers = [21.5, 0.30000000000000004, -1.25e-07, 42, 18.0, float(2**53 + 1)]
    rows = response.json()
    assert len(rows) == 1
    assert rows[0]["timestamp"] == T0 // 60000 * 60000
    assert float(rows[0]["value"]) == pytest.approx(sum(numbers) / len(numbers))
