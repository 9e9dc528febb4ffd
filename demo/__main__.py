"""`python -m demo`: run the demo connector until SIGINT or SIGTERM (composition root)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

import structlog

from demo.connector import DemoConnector
from schema.broker_security import broker_refused_at_start
from schema.log_setup import configure_logging
from schema.settings import SettingsError, load_settings

DEFAULT_NAME = "demo-building"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m demo",
        description="A demo connector that publishes simulated building data over MQTT "
        "to the broker of MQTT_BROKER_HOST/MQTT_BROKER_PORT.",
    )
    parser.add_argument("--name", default=DEFAULT_NAME, help="connector name (topic prefix)")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between values")
    parser.add_argument("--heartbeat", type=float, default=10.0, help="seconds between beats")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(os.environ)
    except SettingsError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    configure_logging(settings)
    if broker_refused_at_start(settings):
        return 2
    connector = DemoConnector(
        args.name,
        settings.mqtt_broker_host,
        settings.mqtt_broker_port,
        value_interval_s=args.interval,
        heartbeat_interval_s=args.heartbeat,
        settings=settings,
    )

    signal.signal(signal.SIGTERM, lambda _s, _f: connector.request_stop())
    signal.signal(signal.SIGINT, lambda _s, _f: connector.request_stop())
    connector.start()
    connector.wait()
    connector.stop()
    structlog.get_logger("demo").info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
