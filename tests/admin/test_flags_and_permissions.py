"""Pages of a flag that is off are absent; a user without a permission sees no control for
it and the server refuses it too."""

from __future__ import annotations

from tests.admin.conftest import AdminClient, AdminScene


def test_flags_off_remove_pages(admin_scene: AdminScene, make_admin_client):
    client: AdminClient = make_admin_client(
        admin_scene, ACTIVATE_CONTROL_EXTENSION="FALSE", ACTIVATE_HISTORY_EXTENSION="FALSE"
    )
    assert client.login("admin").status_code == 302
    home = client.get("").text
    assert "Controller" not in home
    for path in ("controller/list", "controlled-datapoint/list", "controller/create"):
        assert client.get(path).status_code == 404, path
    plant = admin_scene.connector("plant")
    dp = admin_scene.datapoint(plant, "temp", "actuator")
    page = client.get(f"datapoint/details/{dp}").text
    assert "history" not in page.lower() and "<svg" not in page
    # History without control: values only, no setpoint or schedule history.
    history_only = make_admin_client(
        admin_scene, ACTIVATE_CONTROL_EXTENSION="FALSE", ACTIVATE_HISTORY_EXTENSION="TRUE"
    )
    history_only.login("admin")
    page = history_only.get(f"datapoint/details/{dp}?kind=setpoint").text
    assert "Value history" in page and "Setpoint history" not in page
    assert "controller/list" not in history_only.get("").text
    assert history_only.get("controller/list").status_code == 404


def test_view_only_user_sees_no_edit_controls_and_is_refused(
    admin_scene: AdminScene, make_admin_client
):
    plant = admin_scene.connector("plant")
    dp = admin_scene.datapoint(plant, "temp", example_value="1")
    viewer: AdminClient = make_admin_client(admin_scene)
    assert viewer.login("viewer").status_code == 302

    home = viewer.get("").text
    assert "+ New connector" not in home and "plant" in home
    assert "/admin/user/list" not in home  # no users menu without view_user

    listing = viewer.get("connector/list").text
    assert "plant" in listing
    assert "/admin/connector/create" not in listing and "/admin/connector/edit/" not in listing
    assert "fa-trash" not in listing

    page = viewer.get(f"connector/details/{plant}").text
    assert "temp" in page
    assert "Activate selected" not in page and 'name="datapoint"' not in page
    assert "Rename" not in page and "modal-delete" not in page

    dp_page = viewer.get(f"datapoint/details/{dp}").text
    assert "Edit metadata" not in dp_page

    # The server refuses what the page does not offer.
    assert viewer.get("connector/create").status_code == 403
    assert viewer.post("connector/create", {"name": "sneaky"}).status_code == 403
    assert viewer.get(f"connector/edit/{plant}").status_code == 403
    assert viewer.post(f"datapoint/edit/{dp}", {"data_format": "unknown"}).status_code == 403
    refused = viewer.post(
        f"connector/activation/{plant}", [("datapoint", dp), ("action", "activate")]
    )
    assert refused.status_code == 403
    assert viewer.delete(f"connector/delete?pks={plant}").status_code == 403
    assert viewer.get("user/list").status_code == 403
    assert viewer.get("api-token/create").status_code == 403
    assert admin_scene.scalar("SELECT count(*) FROM connector") == 1
    assert admin_scene.scalar("SELECT count(*) FROM datapoint WHERE is_active") == 0

    # The editor may do exactly what its permissions name.
    editor: AdminClient = make_admin_client(admin_scene)
    editor.login("editor")
    page = editor.get(f"connector/details/{plant}").text
    assert "Activate selected" in page and "Rename" in page
    ok = editor.post(f"connector/activation/{plant}", [("datapoint", dp), ("action", "activate")])
    assert ok.status_code == 302
    assert admin_scene.scalar("SELECT count(*) FROM datapoint WHERE is_active") == 1
    assert editor.get("user/list").status_code == 403
