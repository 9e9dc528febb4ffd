"""Junk in URLs and forms gets a clear answer (a 4xx or the page without it), never a 500."""

from __future__ import annotations

from tests.admin.conftest import AdminClient, AdminScene

LIST_QUERIES = (
    "search=%00",
    "search=" + "x" * 5000,
    "search=%25_%5C",
    "sortBy=nonsense&sort=asc",
    "sortBy=id&sort=sideways",
    "page=99999999999999999999",
    "page=-1",
    "pageSize=100000",
    "connector_id=99999999999999",
    "type=%00",
    "is_active=maybe",
    "data_format=" + "z" * 300,
)


def test_list_pages(admin: AdminClient, admin_scene: AdminScene):
    plant = admin_scene.connector("plant")
    admin_scene.datapoint(plant, "temp")
    for identity in ("connector", "datapoint", "user", "api-token"):
        for query in LIST_QUERIES:
            response = admin.get(f"{identity}/list?{query}")
            assert response.status_code < 500, (identity, query, response.status_code)


def test_pages_and_forms(admin: AdminClient, admin_scene: AdminScene):
    plant = admin_scene.connector("plant")
    dp = admin_scene.datapoint(plant, "temp")
    for path in (
        "connector/details/0",
        "connector/details/99999999999999999999",
        "connector/details/%00",
        f"connector/details/{plant}?level=%00",
        f"datapoint/details/{dp}?before=99999999999999999&kind=value",
        f"datapoint/details/{dp}?before=-99999999999999999",
        "datapoint/edit/-5",
        "nonexistent/list",
    ):
        assert admin.get(path).status_code < 500, path
    for path, form in (
        ("connector/create", {"name": "a\x00b"}),
        ("connector/create", {"name": "n" * 300}),
        ("user/create", {"username": "u1", "new_password": "p", "first_name": "a\x00"}),
        ("user/create", {"username": "u2", "new_password": "p", "groups": "999999"}),
        ("group/create", {"name": "g", "permissions": "abc"}),
        ("api-token/create", {"user": "abc"}),
        ("controlled-datapoint/create", {"controller": "1", "sensor_datapoint": "x"}),
        (f"datapoint/edit/{dp}", {"data_format": "unknown", "min_value": "1e999"}),
        (f"datapoint/edit/{dp}", {"data_format": "unknown", "description": "d\x00"}),
        (f"connector/activation/{plant}", {"action": "activate", "datapoint": "9" * 40}),
    ):
        response = admin.post(path, {**form, "save": "Save"})
        assert response.status_code < 500, (path, form, response.status_code)
    # A body that is not a form at all.
    raw = admin.client.post(
        admin.url("connector/create"),
        content=b"\xff\xfe junk",
        headers={"Origin": admin.origin, "Content-Type": "multipart/form-data; boundary=x"},
    )
    assert raw.status_code == 403


def test_oversized_form_bodies_are_refused_with_413(admin_scene: AdminScene, make_admin_client):
    """READAPI_MAX_BODY_BYTES covers the admin UI too: a login page must not buffer a
    gigabyte for an anonymous client, whether the size is announced or the body streamed."""
    client = make_admin_client(admin_scene, READAPI_MAX_BODY_BYTES="4096")
    big = {"username": "admin", "password": "x" * 10_000}
    announced = client.post("login", big)
    assert announced.status_code == 413
    assert "4096 bytes" in announced.text

    def chunks():
        for _ in range(10):
            yield b"password=" + b"y" * 1000

    streamed = client.client.post(
        client.url("login"),
        content=chunks(),
        headers={"Origin": client.origin, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413

    # Below the limit, the form is handled as always.
    assert client.login("admin").status_code == 302


def test_before_login_a_form_is_read_up_to_64_kib(admin_scene: AdminScene, make_admin_client):
    """Issue 12, finding 9: a stranger may not make a worker read the admin UI's 1 MiB of
    form; once logged in, the whole limit holds again."""
    client = make_admin_client(admin_scene)
    limit = "65536 bytes"
    fits = client.post("login", {"username": "admin", "password": "x" * 60_000})
    assert fits.status_code == 400 and "correct username and password" in fits.text
    announced = client.post("login", {"username": "admin", "password": "x" * 70_000})
    assert announced.status_code == 413 and limit in announced.text
    # A stranger's post to any other page is no different.
    elsewhere = client.post("connector/create", {"name": "n", "padding": "p" * 70_000})
    assert elsewhere.status_code == 413 and limit in elsewhere.text

    def chunks():
        yield b"username=admin&password="
        for _ in range(20):
            yield b"y" * 8192

    streamed = client.client.post(
        client.url("login"),
        content=chunks(),
        headers={"Origin": client.origin, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413 and limit in streamed.text

    assert client.login("admin").status_code == 302
    created = client.post("connector/create", {"name": "plant", "padding": "p" * 200_000})
    assert created.status_code == 302, created.text[:300]
    assert admin_scene.scalar("SELECT count(*) FROM connector WHERE name = 'plant'") == 1


def test_allowed_values_too_deep_or_not_text(admin: AdminClient, admin_scene: AdminScene):
    """Issue 12, finding 9, in the admin form: the REST body's JSON limits, a 400 beside the
    field (it was a 500), nothing stored."""
    dp = admin_scene.datapoint(admin_scene.connector("plant"), "temp")
    for text, reason in (
        ("[" * 100_000 + "]" * 100_000, "nested deeper than 64 levels"),
        ("[" * 65 + "]" * 65, "nested deeper than 64 levels"),
        ('["\\ud800"]', "lone surrogate"),
    ):
        response = admin.post(
            f"datapoint/edit/{dp}",
            {"data_format": "discrete_text", "allowed_values": text, "save": "Save"},
        )
        assert response.status_code == 400, (text[:10], response.status_code)
        assert 'class="invalid-feedback"' in response.text and reason in response.text
    assert admin_scene.scalar(f"SELECT allowed_values FROM datapoint WHERE id = {dp}") is None
    fits = "[" * 63 + '"on"' + "]" * 63
    saved = admin.post(
        f"datapoint/edit/{dp}",
        {"data_format": "discrete_text", "allowed_values": f"[{fits}]", "save": "Save"},
    )
    assert saved.status_code == 302
