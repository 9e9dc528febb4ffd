"""Start-up work done once per start, before the workers: migrate, create the superuser."""

from __future__ import annotations

import structlog

from schema.log_setup import configure_logging
from schema.settings import Settings

log = structlog.get_logger("readapi")


def migrated_engine(settings: Settings):
    from schema.database import create_sqlalchemy_engine
    from schema.migrate import migrate

    engine = create_sqlalchemy_engine(settings)
    migrate(engine, timescaledb=settings.timescaledb)
    return engine


def prepare(settings: Settings) -> None:
    """Migrate, then create DJANGO_SUPERUSER_* unless it exists (runs in a child process)."""
    configure_logging(settings)
    from readapi.accounts import ensure_superuser

    engine = migrated_engine(settings)
    try:
        username = settings.django_superuser_username
        password = settings.django_superuser_password
        if username and password:
            with engine.begin() as connection:
                created = ensure_superuser(
                    connection, username, password, settings.django_superuser_email or ""
                )
            log.info("superuser_checked", username=username, created=created)
    finally:
        engine.dispose()
