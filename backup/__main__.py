"""`python -m backup`: back up or restore datapoints and their messages over the REST API.

The options are those of the original service's simple_db_backup.py:

  python -m backup -b -t http://localhost:8080 -s 2021-08-01 -e 2021-08-31 -d /data \\
      -u admin -p secret
  python -m backup -r -t http://new-host:8080 -s 2021-08-01 -e 2021-08-31 -d /data \\
      -u admin -p secret

A second run with the same options resumes: chunk files already backed up (of days that were
over when fetched) are not fetched again, chunks already restored to the same target are not
sent again. The API needs GET/POST/PUT /datapoint/ and GET/PUT /datapoint/<id>/value/ (and
/setpoint/, /schedule/ for actuators) with the timestamp__gte/timestamp__lt filters.

A backup file too large once decompressed (--max-file-mb), not bz2 or not JSON is refused
by name; the rest are restored, and the exit code is 4.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import msgspec
import structlog

from backup.api import Api, ApiError
from backup.backup_job import run_backup
from backup.layout import DEFAULT_MAX_FILE_MB
from backup.restore_job import run_restore
from schema.log_setup import configure_logging
from schema.settings import LOG_LEVELS, Settings


def yesterday_utc() -> date:
    return datetime.now(UTC).date() - timedelta(days=1)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m backup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("-b", "--backup", action="store_true", help="Back up the data.")
    mode.add_argument("-r", "--restore", action="store_true", help="Restore the data.")
    p.add_argument(
        "-t",
        "--target-url",
        required=True,
        help="URL of the REST API, ROOT_PATH included, e.g. http://localhost:8080",
    )
    p.add_argument("-u", "--username", help="user for HTTP Basic auth (none: no auth)")
    p.add_argument("-p", "--password", help="password for --username; asked for when left out")
    p.add_argument("--token", help="an API token (Authorization: Bearer), instead of -u/-p")
    p.add_argument(
        "-s",
        "--start-date",
        required=True,
        type=date.fromisoformat,
        help="first day (YYYY-MM-DD, UTC) whose messages are backed up or restored",
    )
    p.add_argument(
        "-e",
        "--end-date",
        type=date.fromisoformat,
        default=None,
        help="last day (YYYY-MM-DD, UTC), included; defaults to yesterday",
    )
    p.add_argument(
        "-d",
        "--data-directory",
        type=Path,
        required=True,
        help="directory of the backup files; must exist",
    )
    p.add_argument(
        "-y", "--yes", action="store_true", help="accepted for compatibility; never asks"
    )
    p.add_argument(
        "-f",
        "--force-datapoint-creation",
        action="store_true",
        help="accepted for compatibility: missing datapoints are always created (see --no-create)",
    )
    p.add_argument(
        "--no-create",
        action="store_true",
        help="restore only into datapoints that exist on the target already",
    )
    p.add_argument(
        "--keep-inactive",
        action="store_true",
        help="do not activate restored datapoints (by default they are, as in the backup)",
    )
    p.add_argument("--workers", type=int, default=None, help="parallel requests (4 / 2)")
    p.add_argument("--batch-size", type=int, default=10_000, help="messages per PUT when restoring")
    p.add_argument(
        "--max-file-mb",
        type=positive_int,
        default=DEFAULT_MAX_FILE_MB,
        help="restore: refuse a backup file larger than this once decompressed (MiB; "
        f"default {DEFAULT_MAX_FILE_MB}); the rest are restored, and the exit code is 4",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--log-level", default="INFO", choices=LOG_LEVELS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure_logging(Settings(loglevel=args.log_level))
    log = structlog.get_logger("backup")
    end = args.end_date or yesterday_utc()
    if end < args.start_date:
        print("error: --end-date is before --start-date", file=sys.stderr)
        return 1
    directory = args.data_directory.absolute()
    if not directory.is_dir():
        print(f"error: {directory} is not a directory", file=sys.stderr)
        return 1
    password = args.password
    if args.username and password is None:
        password = getpass.getpass(f"Password for {args.username}: ")
    api = Api(args.target_url, args.username, password, args.token)
    show = False if args.no_progress else None
    try:
        if args.backup:
            summary = run_backup(
                api, directory, args.start_date, end, workers=args.workers or 4, show_progress=show
            )
        else:
            summary = run_restore(
                api,
                directory,
                args.start_date,
                end,
                workers=args.workers or 2,
                batch_size=args.batch_size,
                activate=not args.keep_inactive,
                create=not args.no_create,
                show_progress=show,
                max_file_bytes=args.max_file_mb << 20,
            )
    except httpx.TransportError as error:
        print(f"error: {args.target_url} does not answer: {error}", file=sys.stderr)
        return 2
    except ApiError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    finally:
        api.close()
    log.info("done", **msgspec.structs.asdict(summary))
    refused = getattr(summary, "refused", [])
    for line in refused:
        print(f"error: refused {line}", file=sys.stderr)
    return 4 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
