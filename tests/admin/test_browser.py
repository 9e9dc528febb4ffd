"""A newcomer's first session, in a real browser (Debian's Chromium, driven by Playwright),
against real processes: readapi (two workers) and ingestd on PostgreSQL and Mosquitto, and a
connector speaking MQTT.

Log in, create a connector, watch its datapoints arrive, activate two, see their values.
Screenshots of each step are saved in the test's temporary directory.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.admin.fake_connector import FakeConnector
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.ingestd.conftest import IngestdProcess, drop_session
from tests.support.broker import free_port, wait_for_port

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="Debian's chromium is not installed (apt-get install chromium chromium-driver)",
)


@pytest.fixture
def served(pg_env: dict[str, str]) -> Iterator[str]:
    """readapi with two workers and ingestd, as `make run` starts them."""
    port = free_port()
    client_id = f"ingestd-browser-{secrets.token_hex(4)}"
    env = {
        **os.environ,
        **pg_env,
        "BEMCOM_HTTP_PORT": str(port),
        "DJANGO_SUPERUSER_USERNAME": "admin",
        "DJANGO_SUPERUSER_PASSWORD": "correct horse",
        "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
        "N_WORKER_PROCESSES": "2",
        "LOGLEVEL": "WARNING",
        "INGESTD_CLIENT_ID": client_id,
    }
    readapi = subprocess.Popen(
        [sys.executable, "-m", "readapi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ingestd = None
    try:
        wait_for_port(port, timeout=30)
        # IngestdProcess waits for its "mqtt_connected" line, logged at INFO.
        ingestd = IngestdProcess({**env, "LOGLEVEL": "INFO"})
        yield f"http://127.0.0.1:{port}"
    finally:
        for process in (readapi, ingestd.process if ingestd else None):
            if process is None:
                continue
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        drop_session(MQTT_HOST, MQTT_PORT, client_id)


def test_newcomer_sets_up_a_connector(served: str, tmp_path: Path, unique_name: str):
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    connector = FakeConnector(
        MQTT_HOST,
        MQTT_PORT,
        unique_name,
        sensors={"room_temperature": 21.5, "room_humidity": 40.0, "window_open": False},
        actuators={"heating_valve": "closed"},
    )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        try:
            page.goto(f"{served}/admin/")
            expect(page.get_by_role("heading", name="Log in to the administration")).to_be_visible()
            page.fill("#username", "admin")
            page.fill("#password", "wrong")
            page.click("button[type=submit]")
            expect(page.locator(".alert-danger")).to_contain_text("correct username and password")
            page.screenshot(path=shots / "01-login-refused.png", full_page=True)
            page.fill("#username", "admin")
            page.fill("#password", "correct horse")
            page.click("button[type=submit]")
            expect(page.get_by_text("No connectors yet.")).to_be_visible()
            page.screenshot(path=shots / "02-overview-empty.png", full_page=True)

            page.click("text=+ New connector")
            page.fill("input[name=name]", unique_name)
            page.screenshot(path=shots / "03-new-connector.png", full_page=True)
            page.click("input[type=submit][value=Save]")
            expect(page.get_by_role("heading", name=f"Connector {unique_name}")).to_be_visible()
            expect(page.get_by_text("has not announced any datapoints yet")).to_be_visible()
            page.screenshot(path=shots / "04-connector-created.png", full_page=True)

            # The connector starts; the page reloads by itself until its datapoints arrive.
            connector.start()
            expect(page.locator("label", has_text="room_temperature")).to_be_visible(timeout=20_000)
            page.screenshot(path=shots / "05-datapoints-arrived.png", full_page=True)

            page.check("input[aria-label='Select room_temperature']")
            page.check("input[aria-label='Select room_humidity']")
            page.click("button[value=activate]")
            expect(page.get_by_text("2 datapoints activated")).to_be_visible()
            page.screenshot(path=shots / "06-activated.png", full_page=True)

            # ingestd republishes the map, the connector sends values, ingestd stores them.
            deadline = time.monotonic() + 20
            while page.locator("code.last-value").count() < 2:
                assert time.monotonic() < deadline, "the values never appeared"
                time.sleep(0.7)
                page.reload()
            expect(page.locator("#heartbeat")).not_to_contain_text("overdue")
            page.screenshot(path=shots / "07-values-arrived.png", full_page=True)

            link = page.locator("tr", has_text="room_temperature").locator("a.small")
            link.click()
            expect(page.locator("#last-value")).to_contain_text("21.")
            # The plot needs a few values: reload until the connector has sent them (it sends
            # every few hundred ms, slower on a loaded machine).
            deadline = time.monotonic() + 30
            while page.locator("svg.bemcom-plot").count() == 0:
                assert time.monotonic() < deadline, "the plot never appeared"
                time.sleep(0.7)
                page.reload()
            expect(page.locator("svg.bemcom-plot")).to_be_visible()
            page.screenshot(path=shots / "08-datapoint.png", full_page=True)

            # A mistake in the metadata form is explained beside the field.
            page.click("text=Edit metadata")
            page.fill("input[name=min_value]", "30")
            page.fill("input[name=max_value]", "10")
            page.click("input[type=submit][value=Save]")
            expect(page.locator(".invalid-feedback")).to_contain_text(
                "must not exceed the maximum value"
            )
            page.screenshot(path=shots / "09-form-error.png", full_page=True)

            # An API token for a script: shown once, in a dialog.
            page.goto(f"{served}/admin/api-token/create")
            page.fill("input[name=label]", "backup job")
            page.click("input[type=submit][value=Save]")
            expect(page.locator("#modal-secret-value")).to_be_visible()
            assert len(page.input_value("#modal-secret-value")) == 40
            page.screenshot(path=shots / "10-token-once.png", full_page=True)

            page.goto(f"{served}/admin/datapoint/list")
            page.screenshot(path=shots / "11-datapoint-list.png", full_page=True)
            page.goto(f"{served}/admin/connector/list")
            page.screenshot(path=shots / "12-connector-list.png", full_page=True)
            page.goto(f"{served}/admin/")
            expect(page.locator("table")).to_contain_text(unique_name)
            page.screenshot(path=shots / "13-overview.png", full_page=True)

            # Logging out is one click (a POST with the token behind the link).
            page.get_by_role("link", name="Logout").click()
            expect(page.get_by_role("button", name="Log in")).to_be_visible()
            page.goto(f"{served}/admin/connector/list")
            expect(page.get_by_role("button", name="Log in")).to_be_visible()
        finally:
            page.screenshot(path=shots / "99-last.png", full_page=True)
            browser.close()
            connector.stop()
    assert connector.sent >= 4
