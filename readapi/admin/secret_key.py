"""The key that signs admin sessions: DJANGO_SECRET_KEY, or one generated once and kept.

The original generates a random key per container start, so a restart (or, with several
workers, a request landing on another worker) logs every user out. Here an unset key is
generated once and stored in `service_state`; whichever worker inserts first wins and every
other worker, and every later start, reads that same key.
"""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from schema.tables import service_state

STATE_KEY = "admin_session_secret"


def session_secret(engine: Engine, configured: str | None) -> str:
    if configured:
        return configured
    with engine.connect() as connection:
        stored = connection.execute(
            select(service_state.c.value).where(service_state.c.key == STATE_KEY)
        ).scalar_one_or_none()
    if stored:
        return stored
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(service_state).values(key=STATE_KEY, value=secrets.token_urlsafe(48))
            )
    except IntegrityError:
        pass  # another worker stored one first: use theirs
    with engine.connect() as connection:
        return connection.execute(
            select(service_state.c.value).where(service_state.c.key == STATE_KEY)
        ).scalar_one()
