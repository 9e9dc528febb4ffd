"""Users, groups, permissions and API tokens in the admin UI."""

from __future__ import annotations

import re

from tests.admin.conftest import AdminClient, AdminScene


def permission_id(scene: AdminScene, codename: str) -> int:
    return scene.scalar("SELECT id FROM auth_permission WHERE codename = :c", c=codename)


def test_users_with_passwords_groups_and_permissions(
    admin: AdminClient, admin_scene: AdminScene, make_admin_client
):
    view_connector = permission_id(admin_scene, "view_connector")
    created = admin.post(
        "group/create", {"name": "operators", "permissions": view_connector, "save": "Save"}
    )
    assert created.status_code == 302
    group = admin_scene.scalar("SELECT id FROM auth_group WHERE name = 'operators'")
    duplicate = admin.post("group/create", {"name": "operators", "save": "Save"})
    assert duplicate.status_code == 400 and "group with this name already exists." in duplicate.text

    user = {
        "username": "olga",
        "new_password": "s3cret-pass",
        "email": "olga@example.com",
        "is_active": "y",
        "is_staff": "y",
        "groups": group,
        "save": "Save",
    }
    for changes, message in (
        ({"new_password": ""}, "This field is required."),
        ({"username": "bad name!"}, "Enter a valid username"),
        ({"username": "admin"}, "A user with that username already exists."),
        ({"email": "not-an-email"}, "Enter a valid email address."),
    ):
        response = admin.post("user/create", {**user, **changes})
        assert response.status_code == 400, changes
        assert 'class="invalid-feedback"' in response.text and message in response.text, changes
    assert admin.post("user/create", user).status_code == 302
    stored = admin_scene.scalar("SELECT password FROM auth_user WHERE username = 'olga'")
    assert stored.startswith("$argon2id$") and "s3cret" not in stored
    # The password field is write-only: the hash is shown nowhere.
    olga = admin_scene.scalar("SELECT id FROM auth_user WHERE username = 'olga'")
    assert stored not in admin.get(f"user/details/{olga}").text
    assert stored not in admin.get(f"user/edit/{olga}").text

    # She logs in, and her group's permission lets her see connectors, nothing more.
    client = make_admin_client(admin_scene)
    assert client.login("olga", "s3cret-pass").status_code == 302
    assert client.get("connector/list").status_code == 200
    assert client.get("datapoint/list").status_code == 403

    # Editing without a password keeps it.
    edit = {k: v for k, v in user.items() if k != "new_password"}
    assert admin.post(f"user/edit/{olga}", {**edit, "new_password": ""}).status_code == 302
    assert admin_scene.scalar(f"SELECT password FROM auth_user WHERE id = {olga}") == stored


def test_non_superuser_cannot_raise_rights(admin_scene: AdminScene, make_admin_client):
    with admin_scene.engine.begin() as connection:
        from readapi.accounts import grant_permissions

        editor = admin_scene.scalar("SELECT id FROM auth_user WHERE username = 'editor'")
        grant_permissions(
            connection, editor, ("view_user", "add_user", "change_user", "add_token", "view_token")
        )
    client: AdminClient = make_admin_client(admin_scene)
    client.login("editor")
    promote = client.post(
        "user/create",
        {"username": "boss", "new_password": "x", "is_superuser": "y", "save": "Save"},
    )
    assert promote.status_code == 400 and "Only a superuser" in promote.text
    admin_id = admin_scene.scalar("SELECT id FROM auth_user WHERE username = 'admin'")
    takeover = client.post(
        f"user/edit/{admin_id}", {"username": "admin", "new_password": "mine", "save": "Save"}
    )
    assert takeover.status_code == 400 and "Only a superuser" in takeover.text
    token_for_admin = client.post("api-token/create", {"user": admin_id, "save": "Save"})
    assert token_for_admin.status_code == 400 and "Only a superuser" in token_for_admin.text
    assert admin_scene.scalar("SELECT count(*) FROM api_token") == 0
    own = client.post("api-token/create", {"user": editor, "label": "mine", "save": "Save"})
    assert own.status_code == 200 and "New API token" in own.text


def test_token_is_shown_once_and_stored_hashed(
    admin: AdminClient, admin_scene: AdminScene, make_admin_client
):
    viewer = admin_scene.scalar("SELECT id FROM auth_user WHERE username = 'viewer'")
    response = admin.post("api-token/create", {"user": viewer, "label": "backup", "save": "Save"})
    assert response.status_code == 200
    assert response.headers["cache-control"].startswith("no-store")
    token = re.search(r'value="([0-9a-f]{40})"', response.text).group(1)
    stored = admin_scene.scalar("SELECT key_hash FROM api_token")
    assert stored != token and len(stored) == 64
    listing = admin.get("api-token/list").text
    assert token not in listing and "backup" in listing and stored[:8] in listing
    # The token works against the REST API, as the viewer.
    api = make_admin_client(admin_scene).client
    answer = api.get("/datapoint/", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200
    # Revoked by deleting it (a fresh worker: the API caches a credential for a minute).
    assert admin.delete(f"api-token/delete?pks={stored}").status_code == 200
    assert admin_scene.scalar("SELECT count(*) FROM api_token") == 0
    fresh = make_admin_client(admin_scene).client
    assert fresh.get("/datapoint/", headers={"Authorization": f"Bearer {token}"}).status_code == 401
