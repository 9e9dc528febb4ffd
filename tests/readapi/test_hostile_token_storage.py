"""API tokens are stored only as hashes: a copy of the database gives no usable token.

Tokens made by POST /auth/token/ and by `python -m readapi createtoken` (create_token) are
looked for, as text, in every row of every table, and on SQLite in the database files'
bytes as well (pages of deleted rows included).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from readapi.accounts import create_token, user_by_name
from schema.tables import metadata
from tests.readapi.conftest import Scene

JSON = {"Content-Type": "application/json"}


def every_row_as_text(scene: Scene) -> str:
    return "\n".join(
        repr(scene.execute(f"SELECT * FROM {table.name}")) for table in metadata.sorted_tables
    )


def test_the_database_never_holds_a_token(scene: Scene, make_client):
    client = make_client(scene, auth={})
    issued = client.post(
        "/auth/token/", content=json.dumps({"username": "admin", "password": "pass"}), headers=JSON
    )
    assert issued.status_code == 200
    tokens = [issued.json()["token"], scene.admin_token, scene.nobody_token]
    with scene.engine.begin() as connection:
        tokens.append(create_token(connection, user_by_name(connection, "admin").id, "cli"))
    assert all(len(token) == 40 for token in tokens)

    hashes = {row[0] for row in scene.execute("SELECT key_hash FROM api_token")}
    assert hashes == {hashlib.sha256(t.encode()).hexdigest() for t in tokens}
    text = every_row_as_text(scene)
    for token in tokens:
        assert token not in text and token.upper() not in text
    if not scene.postgres:
        data_dir = Path(scene.settings.sqlite_path).parent
        for path in data_dir.iterdir():
            raw = path.read_bytes()
            for token in tokens:
                assert token.encode() not in raw, path.name
    # And each one works, which shows the hashes are of these very tokens.
    for token in tokens:
        response = client.get("/datapoint/", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code in (200, 403)
