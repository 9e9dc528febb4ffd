"""`python -m readapi`: the composition root. Settings are read here, and only here.

python -m readapi                     serve (migrate, create the superuser, run uvicorn)
python -m readapi createuser NAME     create or reset a user (password from --password
                                      or stdin), optionally --superuser / --permission;
                                      --keep-existing leaves an existing user alone
python -m readapi createtoken NAME    print a new API token for a user
python -m readapi users ...           list|create|deactivate|activate|set-password|grant|revoke
python -m readapi tokens ...          list|create|revoke (see readapi/cli/)
"""

from __future__ import annotations

import argparse
import functools
import getpass
import multiprocessing
import os
import shutil
import sys
import tempfile

import msgspec
import structlog

from readapi.cli import tokens, users
from readapi.cli.common import USAGE_ERROR, CommandError
from readapi.startup import migrated_engine
from schema.log_setup import configure_logging
from schema.settings import Settings, SettingsError, load_settings

log = structlog.get_logger("readapi")


def worker_app():
    """uvicorn's factory in every worker process: settings from the inherited environment."""
    from readapi.app import create_app
    from readapi.proxy_check import ProxyHeadersCheck

    settings = load_settings(os.environ)
    configure_logging(settings)
    return ProxyHeadersCheck(create_app(settings), settings.forwarded_allow_ips)


def prepare_in_child(settings: Settings) -> None:
    """Run `prepare` in a child process: alembic and the migrations then never occupy the
    memory of this process, which with one worker is the worker itself."""
    from readapi.startup import prepare

    context = multiprocessing.get_context("spawn")
    child = context.Process(target=prepare, args=(settings,), name="readapi-prepare")
    child.start()
    child.join()
    if child.exitcode != 0:
        raise SystemExit(f"start-up preparation failed (exit code {child.exitcode})")


def serve(settings: Settings) -> int:
    import uvicorn

    from readapi.http_protocol import DeadlineH11Protocol
    from schema.broker_security import broker_refused_at_start

    if broker_refused_at_start(settings):
        return 2
    prepare_in_child(settings)
    # Prometheus multiprocess mode: every worker writes its samples under this directory.
    # It must be in the environment before prometheus_client is imported by a worker.
    own_metrics_dir = None
    if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        own_metrics_dir = tempfile.mkdtemp(prefix="readapi-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = own_metrics_dir
    log.info(
        "serving",
        host=settings.http_host,
        port=settings.http_port,
        workers=settings.n_worker_processes,
    )
    try:
        uvicorn.run(
            "readapi.__main__:worker_app",
            factory=True,
            host=settings.http_host,
            port=settings.http_port,
            workers=settings.n_worker_processes,
            # uvicorn's records go through the root handler configure_logging installed (in
            # each worker too, by worker_app): no "INFO:     Started server process" lines.
            log_config=None,
            log_level=settings.loglevel.lower(),
            access_log=settings.loglevel == "DEBUG",
            proxy_headers=True,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            server_header=False,
            http=functools.partial(
                DeadlineH11Protocol, head_timeout=settings.readapi_header_timeout_seconds
            ),
        )
    finally:
        if own_metrics_dir is not None:
            shutil.rmtree(own_metrics_dir, ignore_errors=True)
    return 0


def create_user_command(settings: Settings, args: argparse.Namespace) -> int:
    from readapi.accounts import UnknownPermission, create_user

    password = args.password
    if password is None:
        password = (
            getpass.getpass("Password: ")
            if sys.stdin.isatty()
            else sys.stdin.readline().rstrip("\n")
        )
    if not password:
        print("error: an empty password is not allowed", file=sys.stderr)
        return 2
    engine = migrated_engine(settings)
    try:
        with engine.begin() as connection:
            if args.keep_existing:
                from readapi.accounts import user_by_name

                existing = user_by_name(connection, args.username)
                if existing is not None:
                    # Changed or deactivated since (admin UI): a restart must not undo it.
                    print(f"user {args.username} (id {existing.id}) exists; left as it is")
                    return 0
            user_id = create_user(
                connection,
                args.username,
                password,
                email=args.email,
                superuser=args.superuser,
                permissions=tuple(args.permission),
            )
    except UnknownPermission as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    print(f"user {args.username} (id {user_id}) saved")
    return 0


def create_token_command(settings: Settings, args: argparse.Namespace) -> int:
    from readapi.accounts import create_token, user_by_name

    engine = migrated_engine(settings)
    try:
        with engine.begin() as connection:
            user = user_by_name(connection, args.username)
            if user is None:
                print(f"error: no user named {args.username!r}", file=sys.stderr)
                return 2
            token = create_token(connection, user.id, label=args.label)
    finally:
        engine.dispose()
    print(token)
    return 0


def admin_command(settings: Settings, args: argparse.Namespace) -> int:
    command = users if args.command == "users" else tokens
    try:
        print(command.run(settings, args))
    except CommandError as error:
        print(f"error: {error}", file=sys.stderr)
        return USAGE_ERROR
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m readapi")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the REST API (the default)")
    user = sub.add_parser("createuser", help="create a user, or reset one's password")
    user.add_argument("username")
    user.add_argument("--password", help="read from stdin when left out")
    user.add_argument("--email", default="")
    user.add_argument("--superuser", action="store_true")
    user.add_argument(
        "--keep-existing",
        action="store_true",
        help="leave an existing user as it is (password, flags, permissions)",
    )
    user.add_argument(
        "--permission",
        action="append",
        default=[],
        help="a codename such as view_datapoint; repeat for more",
    )
    token = sub.add_parser("createtoken", help="print a new API token for a user")
    token.add_argument("username")
    token.add_argument("--label", default="createtoken")
    users.add_parser(sub)
    tokens.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    if args.command in ("users", "tokens") and settings.loglevel in ("DEBUG", "INFO"):
        # The command's answer is its output; the migration check's INFO lines are noise there.
        settings = msgspec.structs.replace(settings, loglevel="WARNING")
    configure_logging(settings)
    if args.command == "createuser":
        return create_user_command(settings, args)
    if args.command == "createtoken":
        return create_token_command(settings, args)
    if args.command in ("users", "tokens"):
        return admin_command(settings, args)
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
