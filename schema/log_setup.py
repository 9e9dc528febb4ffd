"""structlog configuration shared by both processes: JSON in production, lines on a terminal."""

from __future__ import annotations

import logging
import sys

import structlog

from schema.settings import Settings


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.loglevel)
    as_json = settings.log_json if settings.log_json is not None else not sys.stderr.isatty()
    renderer = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (alembic, uvicorn, paho) log through the standard library.
    logging.basicConfig(level=max(level, logging.INFO), stream=sys.stderr, format="%(message)s")
