"""Issue 12, finding 2 in the admin UI: a connector or controller name the MQTT broker
refuses is a form error beside the field (never a 500, never stored), and a connector that
already has such a name shows, must be renamed to be saved, and can be deleted."""

from __future__ import annotations

import html

from tests.admin.conftest import AdminClient, AdminScene

# name -> words of the form error
REFUSED = {
    "x\tpoison": "control character U+0009",
    "c1\x85": "control character U+0085",
    "del\x7f": "control character U+007F",
    "nc\ufdd0": "non-character U+FDD0",
    "bom\ufffe": "non-character U+FFFE",
    "max\uffff": "non-character U+FFFF",
    "p16\U0010fffe": "non-character U+10FFFE",
    "nul\x00": "null character U+0000",
    "a+b": "wildcard",
    "é" * 101: "at most 200 bytes",
}


def _form_error(response, words: str) -> bool:
    text = html.unescape(response.text)
    return 'class="invalid-feedback"' in response.text and words in text


def test_connector_and_controller_forms_refuse_names_the_broker_refuses(
    admin: AdminClient, admin_scene: AdminScene
):
    existing = admin_scene.connector("boiler")
    assert admin.post("controller/create", {"name": "ctl", "save": "Save"}).status_code == 302
    controller = admin_scene.scalar("SELECT id FROM controller")
    for name, words in REFUSED.items():
        for path in (
            "connector/create",
            f"connector/edit/{existing}",
            "controller/create",
            f"controller/edit/{controller}",
        ):
            response = admin.post(path, {"name": name, "save": "Save"})
            assert response.status_code == 400, (path, name, response.status_code)
            assert _form_error(response, words), (path, name)
    assert admin_scene.scalar("SELECT count(*) FROM connector") == 1
    assert admin_scene.scalar(f"SELECT name FROM connector WHERE id = {existing}") == "boiler"
    assert admin_scene.scalar("SELECT count(*) FROM controller") == 1
    assert admin_scene.scalar(f"SELECT name FROM controller WHERE id = {controller}") == "ctl"

    # A form body that is not UTF-8: the form parser replaces it with U+FFFD, a character
    # the broker takes; a redirect or a form error, never a 500.
    response = admin.client.post(
        admin.url("connector/create"),
        content=f"name=a%C0%80b&save=Save&csrf_token={admin.token()}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": admin.origin},
        follow_redirects=False,
    )
    assert response.status_code in (302, 400), response.status_code
    names = {admin_scene.scalar(f"SELECT name FROM connector WHERE id <> {existing}")}
    assert names <= {None, "a\ufffd\ufffdb"}, names


def test_a_stored_refused_name_shows_must_be_renamed_and_deletes(
    admin: AdminClient, admin_scene: AdminScene
):
    poisoned = admin_scene.connector("x\tpoison")
    admin_scene.datapoint(poisoned, "k", is_active=True)
    assert admin.get("connector/list").status_code == 200
    assert admin.get(f"connector/details/{poisoned}").status_code == 200
    assert admin.get(f"connector/edit/{poisoned}").status_code == 200
    kept = admin.post(f"connector/edit/{poisoned}", {"name": "x\tpoison", "save": "Save"})
    assert kept.status_code == 400 and _form_error(kept, "control character U+0009")
    # Deleting it publishes no map (the broker would refuse its topic) and succeeds.
    response = admin.delete(f"connector/delete?pks={poisoned}")
    assert response.status_code == 200, response.text
    assert admin_scene.scalar("SELECT count(*) FROM connector") == 0
    assert admin_scene.scalar("SELECT count(*) FROM datapoint") == 0
