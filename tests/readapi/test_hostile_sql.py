"""SQL injection attempts through every filter, path parameter, text field and credential,
on PostgreSQL and SQLite.

Whatever the payload, the answer is a 4xx in JSON or the correct result (an empty or a
normal list, the text stored exactly as sent), never a 5xx; and afterwards every table holds
the rows it held before, plus only what a write was meant to add. A numeric filter (ids,
timestamps) answers exactly the rows its number selects, and exactly a 400 naming the filter
for what is not a number; a choice filter, exactly a 400 for what is not a choice.
"""

from __future__ import annotations

import base64
import json
import math
import operator
import re
from urllib.parse import quote

import pytest

from readapi import auth
from schema.tables import metadata
from tests.readapi.conftest import Scene

PAYLOADS = [
    "' OR 1=1--",
    "' OR '1'='1",
    "1 OR 1=1",
    "1; DROP TABLE datapoint",
    "1); DROP TABLE datapoint;--",
    "'; DELETE FROM auth_user; --",
    "1 UNION SELECT username, password FROM auth_user--",
    "') UNION SELECT key_hash FROM api_token--",
    "1; SELECT pg_sleep(5)--",
    "' AND 1=CAST((SELECT version()) AS int)--",
    "*/ SELECT 1 /*",
    "1,2) OR (1=1",
    "%27",
    "'",
    '"',
    "\\",
    "%",
    "_",
    "%%",
    "$1",
    ":name",
    "%(name)s",
    "?",
    "\x00",
    "a\x00b",
    "Grüße ✓ 𝄞 \u202e",
    "99999999999999999999999999999",
    "-9223372036854775809",
    "-1",
    "1e309",
    "NaN",
    "0x41",
    "1.5",
    "a" * 5000,
]
ASCII_PAYLOADS = [p for p in PAYLOADS if p.isascii()]

DATAPOINT_TEXT_FILTERS = [
    ("connector__name", "connector", "exact"),
    ("connector__name__icontains", "connector", "icontains"),
    ("key_in_connector", "key_in_connector", "exact"),
    ("key_in_connector__icontains", "key_in_connector", "icontains"),
    ("short_name", "short_name", "exact"),
    ("short_name__icontains", "short_name", "icontains"),
    ("description", "description", "exact"),
    ("description__icontains", "description", "icontains"),
    ("data_format__icontains", "data_format", "icontains"),
    ("unit", "unit", "exact"),
    ("unit__icontains", "unit", "icontains"),
]
CHOICE_FILTERS = ["type", "data_format", "is_active"]
TIME_FILTERS = ["timestamp__gte", "timestamp__gt", "timestamp__lte", "timestamp__lt"]
KINDS = ["value", "setpoint", "schedule"]
JSON = {"Content-Type": "application/json"}


class Problems(list):
    def check(self, response, label: str, allowed: tuple[int, ...] = ()) -> bool:
        """Record what is wrong with an answer; True if it is a success."""
        status = response.status_code
        if status >= 500:
            self.append(f"{label}: {status} {response.text[:200]}")
            return False
        if allowed and status not in allowed:
            self.append(f"{label}: unexpected {status} {response.text[:200]}")
        if status != 204 and "application/json" not in response.headers.get("content-type", ""):
            self.append(f"{label}: {status} as {response.headers.get('content-type')}")
        return status < 400


def row_counts(scene: Scene) -> dict[str, int]:
    return {
        table.name: scene.execute(f"SELECT count(*) FROM {table.name}")[0][0]
        for table in metadata.sorted_tables
    }


def field_of(datapoint: dict, field: str) -> str | None:
    if field == "connector":
        return datapoint["connector"]["name"]
    return datapoint.get(field)


def expected_ids(datapoints: list[dict], field: str, how: str, payload: str) -> list[int]:
    """What the filter must answer (django-filter: an empty value is no filter)."""
    if payload == "":
        return [d["id"] for d in datapoints]
    found = []
    for d in datapoints:
        value = field_of(d, field)
        if value is None:
            continue
        if (how == "exact" and value == payload) or (
            how == "icontains" and payload.lower() in value.lower()
        ):
            found.append(d["id"])
    return found


@pytest.fixture
def hostile_client(scene: Scene, make_client):
    # A payload per username would trip the brute-force throttle, which is tested elsewhere.
    return make_client(scene, READAPI_LOGIN_MAX_FAILURES_PER_IP="0")


def number_of(payload: str) -> float | int | None:
    """The number a numeric filter reads in a payload (django-filter's DecimalField: a finite
    decimal, surrounding spaces allowed), or None for anything else."""
    text = payload.strip()
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", text):
        return None
    number = float(text) if re.search(r"[.eE]", text) else int(text)
    return number if math.isfinite(number) else None


def refused(response, name: str, message: str | None = None) -> str | None:
    """What is wrong with an answer that must be exactly a 400 naming the parameter."""
    if response.status_code != 400:
        return f"{response.status_code}, not 400: {response.text[:200]}"
    if response.headers.get("content-type") != "application/json":
        return f"400 as {response.headers.get('content-type')}"
    body = response.json()
    if set(body) != {name} or len(body[name]) != 1:
        return f"400 not naming {name}: {body}"
    if message is not None and body[name] != [message]:
        return f"400 with {body}, not {message!r}"
    return None


def choice_message(name: str, payload: str) -> str:
    if "\x00" in payload:
        return "Null characters are not allowed."
    if name == "is_active":
        return "Select a valid choice. Use true or false."
    return f"Select a valid choice. {payload} is not one of the available choices."


def test_datapoint_list_filters(scene: Scene, hostile_client):
    client = hostile_client
    scene.datapoint(3, "with % and _ and '", "sensor", description="it's 100% \\ done")
    everything = client.get("/datapoint/").json()
    before = row_counts(scene)
    problems = Problems()
    for payload in [*PAYLOADS, "with % and _", "100%", "'"]:
        for name, field, how in DATAPOINT_TEXT_FILTERS:
            response = client.get("/datapoint/", params={name: payload})
            label = f"{name}={payload[:40]!r}"
            if problems.check(response, label):
                got = sorted(d["id"] for d in response.json())
                if got != sorted(expected_ids(everything, field, how, payload)):
                    problems.append(f"{label}: wrong result {got}")
        # No payload is one of the choices: each is exactly a 400 that says so.
        for name in CHOICE_FILTERS:
            response = client.get("/datapoint/", params={name: payload})
            problem = refused(response, name, choice_message(name, payload))
            if problem:
                problems.append(f"{name}={payload[:40]!r}: {problem}")
    for payload in [*PAYLOADS, *ID_PAYLOADS]:
        label = f"id__in={payload[:40]!r}"
        response = client.get("/datapoint/", params={"id__in": payload})
        number = number_of(payload)
        if number is None or number != int(number):  # an id is a whole number
            problem = refused(response, "id__in")
            if problem:
                problems.append(f"{label}: {problem}")
        elif response.status_code != 200:
            problems.append(f"{label}: {response.status_code} {response.text[:200]}")
        else:
            got = sorted(d["id"] for d in response.json())
            expected = sorted(d["id"] for d in everything if d["id"] == number)
            if got != expected:
                problems.append(f"{label}: {got}, not {expected}")
    assert problems == []
    assert row_counts(scene) == before


# Numbers near and on the stored messages' ids and timestamps, so each filter both keeps
# and drops rows (PAYLOADS' numbers are all far from them).
T = 1795840210439
ID_PAYLOADS = ["1", "2", " 3 ", "+2", "2.0", "101"]
TIME_PAYLOADS = [str(T - 1), str(T), str(T + 1), f"{T}.5", f" {T + 1000} ", f"{T}e0", "0"]
OPERATORS = {
    "timestamp__gte": operator.ge,
    "timestamp__gt": operator.gt,
    "timestamp__lte": operator.le,
    "timestamp__lt": operator.lt,
}


def test_message_filters(scene: Scene, hostile_client):
    """Each numeric filter answers exactly the rows its number selects; anything that is not
    a number is exactly a 400 naming the filter."""
    client = hostile_client
    messages = {
        ("value", 1): {"value": "2.5", "timestamp": T + 1000},
        ("value", 2): {"value": "1.5", "timestamp": T},
        ("setpoint", 101): {"setpoint": [{"preferred_value": "1"}], "timestamp": T},
        ("schedule", 101): {"schedule": [{"value": "1"}], "timestamp": T + 1000},
    }
    for (kind, dp), message in messages.items():
        if kind != "value":
            items = [{"from_timestamp": None, "to_timestamp": None, **i} for i in message[kind]]
            message = {kind: items, "timestamp": message["timestamp"]}
        put = client.put(f"/datapoint/{dp}/{kind}/", content=json.dumps([message]), headers=JSON)
        assert put.status_code == 200, put.text
    full_last = {
        k: client.get(f"/datapoint/last_{k}/").json()["msgs_by_datapoint_id"] for k in KINDS
    }
    full_history = {k: client.get(f"/datapoint/{HISTORY_DP[k]}/{k}/").json() for k in KINDS}
    assert all(len(full_history[k]) == 1 for k in KINDS)
    assert {k: sorted(full_last[k]) for k in KINDS} == {
        "value": ["1", "2"],
        "setpoint": ["101"],
        "schedule": ["101"],
    }
    before = row_counts(scene)
    problems = Problems()
    checked = 0

    def expect(response, label: str, name: str, expected) -> None:
        nonlocal checked
        checked += 1
        if expected is None:
            problem = refused(response, name)
            if problem:
                problems.append(f"{label}: {problem}")
        elif response.status_code != 200:
            problems.append(f"{label}: {response.status_code} {response.text[:200]}")
        else:
            got = response.json()
            got = got["msgs_by_datapoint_id"] if isinstance(got, dict) else got
            if got != expected:
                problems.append(f"{label}: {got}, not {expected}")

    for payload in [*PAYLOADS, *TIME_PAYLOADS, *ID_PAYLOADS]:
        number = number_of(payload)
        for kind in KINDS:
            last = f"/datapoint/last_{kind}/"
            for name, keep in OPERATORS.items():
                label = f"{last}?{name}={payload[:40]!r}"
                expected = None
                if number is not None:
                    expected = {
                        dp: m for dp, m in full_last[kind].items() if keep(m["timestamp"], number)
                    }
                response = client.get(last, params={name: payload})
                expect(response, label, name, expected)
                history = f"/datapoint/{HISTORY_DP[kind]}/{kind}/"
                if expected is not None:
                    expected = [m for m in full_history[kind] if keep(m["timestamp"], number)]
                response = client.get(history, params={name: payload})
                expect(response, f"{history}?{name}={payload[:40]!r}", name, expected)
            expected = None
            if number is not None and number == int(number):
                expected = {dp: m for dp, m in full_last[kind].items() if int(dp) == number}
            response = client.get(last, params={"datapoint__id__in": payload})
            expect(
                response,
                f"{last}?datapoint__id__in={payload[:40]!r}",
                "datapoint__id__in",
                expected,
            )
        # No payload is an interval or an aggregate.
        for params, name in (
            ({"interval": payload}, "interval"),
            ({"interval": "1 hour", "agg": payload}, "agg"),
            ({"interval": f"1 hour{payload}"}, "interval"),
        ):
            response = client.get("/datapoint/2/value/", params=params)
            expect(response, f"value?{params}", name, None)
    assert problems == []
    assert checked > 1000
    assert row_counts(scene) == before


HISTORY_DP = {"value": 2, "setpoint": 101, "schedule": 101}


def test_path_parameters(scene: Scene, hostile_client):
    client = hostile_client
    before = row_counts(scene)
    problems = Problems()
    for payload in PAYLOADS:
        segment = quote(payload, safe="")
        cases = [
            ("GET", f"/datapoint/{segment}/"),
            ("DELETE", f"/connector/{segment}/"),
        ]
        for kind in KINDS:
            cases += [
                ("GET", f"/datapoint/{segment}/{kind}/"),
                ("PUT", f"/datapoint/{segment}/{kind}/"),
                ("POST", f"/datapoint/{segment}/{kind}/"),
                ("GET", f"/datapoint/2/{kind}/{segment}/"),
                ("DELETE", f"/datapoint/2/{kind}/{segment}/"),
                ("DELETE", f"/datapoint/{segment}/{kind}/1795840210439/"),
            ]
        for method, path in cases:
            response = client.request(method, path, content=b"[]", headers=JSON)
            # Nothing exists under these ids: 404 (or 405 where the path reads as another).
            problems.check(response, f"{method} {path[:80]}", allowed=(404, 405))
    assert problems == []
    assert row_counts(scene) == before


def original_answer(text: str) -> str:
    try:
        return json.dumps(float(text))
    except ValueError:
        return json.dumps(text)


def test_text_fields_are_stored_exactly(scene: Scene, hostile_client):
    client = hostile_client
    before = row_counts(scene)
    problems = Problems()
    created = {"connector": 0, "datapoint": 0}
    for number, payload in enumerate(PAYLOADS):
        label = f"{payload[:40]!r}"
        response = client.post("/connector/", content=json.dumps({"name": payload}), headers=JSON)
        if problems.check(response, f"connector {label}", allowed=(201, 400)):
            created["connector"] += 1
            names = scene.execute(
                "SELECT name FROM connector WHERE id = :i", {"i": response.json()["id"]}
            )
            if names != [(payload,)]:
                problems.append(f"connector {label}: stored as {names}")
        item = {
            "connector": {"name": scene.connector_name},
            "key_in_connector": f"{number}:{payload}",
            "type": "sensor",
            "short_name": payload,
            "description": payload,
            "unit": payload,
        }
        response = client.post("/datapoint/", content=json.dumps([item]), headers=JSON)
        if problems.check(response, f"datapoint {label}", allowed=(201, 400)):
            created["datapoint"] += 1
            out = response.json()[0]
            stored = {k: out[k] for k in ("key_in_connector", "short_name", "description", "unit")}
            sent = {k: item[k].strip() for k in stored}
            if stored != sent:
                problems.append(f"datapoint {label}: stored as {stored}")
    # Values are JSON text: each payload comes back as it was sent (asked for exactly), and by
    # default as the original answers it: a string float() reads ("1e309") as that float.
    messages = [
        {"value": json.dumps(p), "timestamp": 1795840210439 + i} for i, p in enumerate(PAYLOADS)
    ]
    response = client.put("/datapoint/2/value/", content=json.dumps(messages), headers=JSON)
    if problems.check(response, "value history PUT", allowed=(200,)):
        back = client.get("/datapoint/2/value/", params={"values": "exact"}).json()
        if [m["value"] for m in back] != [m["value"] for m in messages]:
            problems.append(f"values came back changed: {back[:3]}")
        answered = [m["value"] for m in client.get("/datapoint/2/value/").json()]
        if answered != [original_answer(p) for p in PAYLOADS]:
            problems.append(f"values not answered as the original: {answered[:3]}")
    assert problems == []
    after = row_counts(scene)
    expected = {**before}
    expected["connector"] += created["connector"]
    expected["datapoint"] += created["datapoint"]
    expected["datapoint_value"] += len(PAYLOADS)
    expected["datapoint_last_value"] += 1  # the history PUT's newest message
    # Triggers count control-plane changes; everything else is as it was.
    assert {k: v for k, v in after.items() if k != "control_plane_version"} == {
        k: v for k, v in expected.items() if k != "control_plane_version"
    }
    assert created["connector"] > 10 and created["datapoint"] > 10


def test_credentials(scene: Scene, make_client, monkeypatch):
    # Every attempt here fails; what is under test is the lookup, not argon2's time per guess.
    monkeypatch.setattr(auth, "verify_password", lambda stored, password: False)
    client = make_client(
        scene, auth={}, READAPI_LOGIN_MAX_FAILURES="0", READAPI_LOGIN_MAX_FAILURES_PER_IP="0"
    )
    before = row_counts(scene)
    problems = Problems()
    for payload in PAYLOADS:
        label = f"{payload[:40]!r}"
        for username, password in ((payload, "pass"), ("admin", payload)):
            encoded = base64.b64encode(f"{username}:{password}".encode()).decode()
            response = client.get("/datapoint/", headers={"Authorization": f"Basic {encoded}"})
            problems.check(response, f"Basic {username[:20]!r}:{password[:20]!r}", allowed=(401,))
            body = json.dumps({"username": username, "password": password})
            response = client.post("/auth/token/", content=body, headers=JSON)
            problems.check(response, f"token for {label}", allowed=(400,))
        for scheme in ("Bearer", "Token"):
            header = f"{scheme} {payload}".encode("utf-8", "surrogatepass")
            response = client.get("/datapoint/", headers={"Authorization": header})
            problems.check(response, f"{scheme} {label}", allowed=(401,))
    assert problems == []
    after = row_counts(scene)
    # Only the failure counts of the throttle changed.
    assert {k: v for k, v in after.items() if k != "login_failure"} == {
        k: v for k, v in before.items() if k != "login_failure"
    }
    # Hostile tokens do not match any stored one, and admin's still does.
    bearer = {"Authorization": f"Bearer {scene.admin_token}"}
    assert client.get("/datapoint/", headers=bearer).status_code == 200
