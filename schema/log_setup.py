"""structlog configuration shared by every process: JSON in production, lines on a terminal.

One format per process: the standard library's records (uvicorn, alembic, Litestar, asyncio,
paho, warnings) are rendered by the same structlog renderer as the service's own events, so a
log shipper reading JSON never meets a line of another shape.
"""

from __future__ import annotations

import logging
import sys
import threading
from types import TracebackType

import structlog

from schema.settings import Settings

log = structlog.get_logger("schema.log_setup")
_HANDLER_NAME = "bemcom-structlog"


def _renderer(as_json: bool):
    if as_json:
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())


def configure_logging(settings: Settings) -> None:
    """Idempotent: a uvicorn worker calls it again in its application factory."""
    level = getattr(logging, settings.loglevel)
    as_json = settings.log_json if settings.log_json is not None else not sys.stderr.isatty()
    renderer = _renderer(as_json)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            timestamper,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # One write per event (message and newline together), so lines written by several
        # threads never interleave.
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.add_log_level,
                structlog.stdlib.add_logger_name,
                timestamper,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                renderer,
            ],
        )
    )
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # An earlier call's handler is replaced, so a second call (a uvicorn worker's) does not
    # double every line; handlers of others (pytest's log capture) stay.
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    # Libraries' DEBUG records (SQLAlchemy, paho, asyncio) stay out even with LOGLEVEL=DEBUG.
    root.setLevel(max(level, logging.INFO))
    # Alembic announces each of its plugins at INFO on every start: noise, not events.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    """A crash's traceback as one event in the process's format, not as bare lines."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    log.critical("uncaught_exception", exc_info=(kind, error, traceback))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    log.critical(
        "uncaught_exception_in_thread",
        thread=args.thread.name if args.thread else None,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )
