"""Every state-changing admin request needs our Origin (or Referer) and the session's token."""

from __future__ import annotations

from tests.admin.conftest import AdminClient, AdminScene


def test_cross_site_requests_are_refused(admin: AdminClient, admin_scene: AdminScene):
    token = admin.token()
    form = {"name": "csrf-made", "csrf_token": token}
    url = admin.url("connector/create")
    # A page elsewhere submitting the form, even with a token it could not know.
    evil = admin.client.post(url, data=form, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403 and "CSRF verification failed" in evil.text
    # No Origin and no Referer: refused too.
    assert admin.client.post(url, data=form).status_code == 403
    # A foreign Referer, no Origin.
    foreign = admin.client.post(url, data=form, headers={"Referer": "http://evil.example/x"})
    assert foreign.status_code == 403
    # Our Origin but no token, or a wrong one.
    no_token = admin.client.post(url, data={"name": "x"}, headers={"Origin": admin.origin})
    assert no_token.status_code == 403
    wrong = admin.post("connector/create", {"name": "csrf-made"}, token="forged")
    assert wrong.status_code == 403
    assert admin_scene.scalar("SELECT count(*) FROM connector") == 0
    # Same-site Referer with the token: accepted.
    ok = admin.client.post(
        url,
        data=form,
        headers={"Referer": "http://testserver/admin/connector/create"},
        follow_redirects=False,
    )
    assert ok.status_code == 302
    assert admin_scene.scalar("SELECT count(*) FROM connector") == 1


def test_delete_needs_the_header_token(admin: AdminClient, admin_scene: AdminScene, unique_name):
    connector_id = admin_scene.connector(unique_name)
    path = admin.url(f"connector/delete?pks={connector_id}")
    refused = admin.client.delete(path, headers={"Origin": admin.origin})
    assert refused.status_code == 403
    assert admin_scene.scalar("SELECT count(*) FROM connector") == 1


def test_login_form_is_protected_too(admin_scene: AdminScene, make_admin_client):
    client = make_admin_client(admin_scene)
    forged = client.client.post(
        client.url("login"),
        data={"username": "admin", "password": "pass"},
        headers={"Origin": client.origin},
    )
    assert forged.status_code == 403
