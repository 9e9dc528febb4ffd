"""Logging in and out, and sessions that every worker and every restart accept."""

from __future__ import annotations

import base64
import json
import threading

from itsdangerous import TimestampSigner
from sqlalchemy import text, update

from readapi.admin.auth import LOGIN_FAILED, password_fingerprint
from readapi.admin.secret_key import STATE_KEY, session_secret
from readapi.passwords import hash_password
from schema.tables import auth_user
from tests.admin.conftest import AdminClient, AdminScene


def test_login_logout_and_refusals(admin_scene: AdminScene, make_admin_client):
    client = make_admin_client(admin_scene)
    # Anonymous: every page leads to the login page.
    response = client.get("connector/list", follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"].endswith("/admin/login")
    page = client.get("login")
    assert page.status_code == 200 and 'name="password"' in page.text

    wrong = client.login("admin", "wrong")
    assert wrong.status_code == 400 and LOGIN_FAILED in wrong.text
    unknown = client.login("nobody-like-this", "pass")
    assert unknown.status_code == 400 and LOGIN_FAILED in unknown.text
    # Not staff: the API user may not log in here (Django's rule), same message.
    outsider = client.login("outsider")
    assert outsider.status_code == 400 and LOGIN_FAILED in outsider.text

    ok = client.login("admin")
    assert ok.status_code == 302 and ok.headers["location"].endswith("/admin/")
    home = client.get("")
    assert home.status_code == 200 and "Connectors" in home.text and "Logout" in home.text

    # A GET (a link from anywhere, an <img>) only asks; a POST without the token is refused.
    asked = client.get("logout")
    assert asked.status_code == 200 and 'method="POST"' in asked.text
    assert client.get("", follow_redirects=False).status_code == 200
    forged = client.post("logout", {}, token="forged")
    assert forged.status_code == 403
    assert client.get("", follow_redirects=False).status_code == 200

    out = client.post("logout", {})
    assert out.status_code == 302
    assert client.get("", follow_redirects=False).status_code == 302


def test_logout_ends_the_session_on_the_server(admin_scene: AdminScene, make_admin_client):
    """A cookie copied before logout (another tab, a stolen copy) is refused after it, by
    this application and by another worker's."""
    client = make_admin_client(admin_scene)
    assert client.login("editor").status_code == 302
    copied = dict(client.client.cookies)
    other_worker = make_admin_client(admin_scene)
    other_worker.client.cookies.update(copied)
    assert other_worker.get("connector/list").status_code == 200
    sessions = "SELECT count(*) FROM admin_session"
    assert admin_scene.scalar(sessions) == 1

    assert client.post("logout", {}).status_code == 302
    assert admin_scene.scalar(sessions) == 0
    for app in (client, other_worker):
        app.client.cookies.clear()
        app.client.cookies.update(copied)
        refused = app.get("connector/list", follow_redirects=False)
        assert refused.status_code == 302 and refused.headers["location"].endswith("/login")
    # Logging in again starts a new session; the copy stays dead.
    assert client.login("editor").status_code == 302
    assert client.get("connector/list").status_code == 200
    other_worker.client.cookies.clear()
    other_worker.client.cookies.update(copied)
    assert other_worker.get("connector/list", follow_redirects=False).status_code == 302


def test_a_cookie_without_a_server_side_session_is_refused(
    admin_scene: AdminScene, make_admin_client
):
    """A correctly signed cookie from before server-side sessions (user id and password
    fingerprint, no session id) no longer logs anyone in: its user logs in once more."""
    client = make_admin_client(admin_scene)
    assert client.login("admin").status_code == 302  # the key now exists
    secret = session_secret(admin_scene.engine, None)
    password = admin_scene.scalar("SELECT password FROM auth_user WHERE username = 'admin'")
    user_id = admin_scene.scalar("SELECT id FROM auth_user WHERE username = 'admin'")
    session = {"user_id": user_id, "auth": password_fingerprint(secret, password), "csrf": "x"}
    old = TimestampSigner(secret).sign(base64.b64encode(json.dumps(session).encode()))
    fresh = make_admin_client(admin_scene)
    fresh.client.cookies.set("bemcom_admin_session", old.decode(), path="/admin")
    refused = fresh.get("connector/list", follow_redirects=False)
    assert refused.status_code == 302 and refused.headers["location"].endswith("/login")
    # The same cookie with the session id of a live session is accepted: the test forges
    # cookies the way the application signs them.
    live = TimestampSigner(secret).unsign(
        client.client.cookies["bemcom_admin_session"], max_age=None
    )
    session["sid"] = json.loads(base64.b64decode(live))["sid"]
    forged = TimestampSigner(secret).sign(base64.b64encode(json.dumps(session).encode()))
    fresh.client.cookies.clear()
    fresh.client.cookies.set("bemcom_admin_session", forged.decode(), path="/admin")
    assert fresh.get("connector/list").status_code == 200


def test_inactive_user_or_changed_password_ends_the_session(
    admin_scene: AdminScene, make_admin_client
):
    client = make_admin_client(admin_scene)
    assert client.login("editor").status_code == 302
    assert client.get("connector/list").status_code == 200
    with admin_scene.engine.begin() as connection:
        connection.execute(
            update(auth_user)
            .where(auth_user.c.username == "editor")
            .values(password=hash_password("new"))
        )
    assert client.get("connector/list", follow_redirects=False).status_code == 302
    assert client.login("editor", "new").status_code == 302
    with admin_scene.engine.begin() as connection:
        connection.execute(
            update(auth_user).where(auth_user.c.username == "editor").values(is_active=False)
        )
    assert client.get("connector/list", follow_redirects=False).status_code == 302


def test_session_holds_across_workers_and_restarts(admin_scene: AdminScene, make_admin_client):
    first = make_admin_client(admin_scene)
    assert first.login("admin").status_code == 302
    cookies = dict(first.client.cookies)
    assert "bemcom_admin_session" in cookies
    # Another worker process: its own application on the same database.
    second = make_admin_client(admin_scene)
    second.client.cookies.update(cookies)
    assert second.get("connector/list").status_code == 200
    # A restart: the first application stops, a new one starts.
    first.client.__exit__(None, None, None)
    third = make_admin_client(admin_scene)
    third.client.cookies.update(cookies)
    assert third.get("connector/list").status_code == 200
    # The key was generated once and kept.
    assert admin_scene.scalar("SELECT count(*) FROM service_state WHERE key = :k", k=STATE_KEY) == 1


def test_secret_from_the_environment(admin_scene: AdminScene, make_admin_client):
    configured = make_admin_client(admin_scene, DJANGO_SECRET_KEY="k" * 50)
    assert configured.login("admin").status_code == 302
    cookies = dict(configured.client.cookies)
    same_key = make_admin_client(admin_scene, DJANGO_SECRET_KEY="k" * 50)
    same_key.client.cookies.update(cookies)
    assert same_key.get("connector/list").status_code == 200
    # Signed with the configured key, the cookie means nothing to the generated key.
    generated = make_admin_client(admin_scene)
    generated.client.cookies.update(cookies)
    assert generated.get("connector/list", follow_redirects=False).status_code == 302
    assert admin_scene.scalar("SELECT count(*) FROM service_state") == 1  # generated's own


def test_concurrent_workers_agree_on_one_generated_key(admin_scene: AdminScene):
    with admin_scene.engine.begin() as connection:
        connection.execute(text("DELETE FROM service_state"))
    keys: list[str] = []
    threads = [
        threading.Thread(target=lambda: keys.append(session_secret(admin_scene.engine, None)))
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 6 and len(set(keys)) == 1


def test_cookie_attributes(admin_scene: AdminScene, make_admin_client):
    plain = make_admin_client(admin_scene)
    response = plain.login("admin")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/admin" in cookie
    assert "secure" not in cookie
    # Behind the TLS proxy HTTPS_ONLY asks for; the client keeps Secure cookies for https.
    secure = make_admin_client(admin_scene, base_url="https://testserver", HTTPS_ONLY="TRUE")
    cookie = secure.login("admin").headers["set-cookie"].lower()
    assert "; secure" in cookie and "httponly" in cookie


def test_under_root_path(admin_scene: AdminScene, make_admin_client):
    client: AdminClient = make_admin_client(admin_scene, ROOT_PATH="bemcom/")
    assert client.root == "/bemcom/admin"
    redirect = client.get("", follow_redirects=False)
    assert redirect.headers["location"] == "http://testserver/bemcom/admin/login"
    response = client.login("admin")
    assert response.headers["location"] == "http://testserver/bemcom/admin/"
    assert "path=/bemcom/admin" in response.headers["set-cookie"].lower()
    page = client.get("connector/list")
    assert page.status_code == 200
    assert 'href="http://testserver/bemcom/admin/connector/create"' in page.text
    assert "/bemcom/admin/statics/css/tabler.min.css" in page.text
    assert client.get("statics/css/tabler.min.css").status_code == 200
    # Nothing answers at the admin's old place.
    assert client.client.get("/admin/login").status_code == 404


def test_password_guessing_is_throttled_with_the_api(admin_scene: AdminScene, make_admin_client):
    client = make_admin_client(admin_scene, READAPI_LOGIN_MAX_FAILURES="3")
    for _ in range(3):
        assert client.login("editor", "guess").status_code == 400
    # Now refused before the password is even checked, the right one included.
    refused = client.login("editor")
    assert refused.status_code == 429 and "Too many failed logins" in refused.text
    assert int(refused.headers["retry-after"]) > 0
    # The REST API counts the same failures.
    basic = base64.b64encode(b"editor:pass").decode()
    api = client.client.get("/datapoint/", headers={"Authorization": f"Basic {basic}"})
    assert api.status_code == 429
    # Another user is not affected; a success clears a user's count.
    assert client.login("admin").status_code == 302


def test_allowed_hosts_and_metrics_cover_the_admin(admin: AdminClient):
    foreign = admin.client.get(admin.url("login"), headers={"Host": "evil.example"})
    assert foreign.status_code == 400 and "ALLOWED_HOSTS" in foreign.text
    metrics = admin.client.get("/metrics/", auth=("admin", "pass")).text
    assert 'route="admin-ui"' in metrics
