"""The broker's credentials and TLS, for every paho client of the service (ingestd, readapi's
publisher, the demo connector), and the start-up check that turns a wrong CA or a wrong
password into one clear line naming the setting instead of endless silent reconnects.
"""

from __future__ import annotations

import os
import secrets
import ssl
import threading

import paho.mqtt.client as mqtt
import structlog

from schema.settings import Settings

log = structlog.get_logger("schema.broker")

# CONNACK reason codes (MQTT 5 and their 3.1.1 equivalents) that mean "your credentials".
_BAD_CREDENTIALS = {4, 134}
_NOT_AUTHORIZED = {5, 135}


class BrokerSecurityError(RuntimeError):
    """The broker refused us for something a setting controls; exit 2, naming it."""

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


def tls_context(settings: Settings) -> ssl.SSLContext:
    """Verification on unless MQTT_BROKER_TLS_INSECURE; the system's CAs without a CA file."""
    for setting, path in (
        ("MQTT_BROKER_CA_FILE", settings.mqtt_broker_ca_file),
        ("MQTT_BROKER_CERT_FILE", settings.mqtt_broker_cert_file),
        ("MQTT_BROKER_KEY_FILE", settings.mqtt_broker_key_file),
    ):
        if path and not os.access(path, os.R_OK):
            raise BrokerSecurityError(setting, f"cannot read {path}")
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    try:
        if settings.mqtt_broker_ca_file:
            context.load_verify_locations(cafile=settings.mqtt_broker_ca_file)
    except ssl.SSLError as error:
        raise BrokerSecurityError("MQTT_BROKER_CA_FILE", f"not a PEM CA file ({error})") from None
    if settings.mqtt_broker_cert_file:
        try:
            context.load_cert_chain(
                settings.mqtt_broker_cert_file, settings.mqtt_broker_key_file or None
            )
        except ssl.SSLError as error:
            raise BrokerSecurityError(
                "MQTT_BROKER_CERT_FILE",
                f"certificate and MQTT_BROKER_KEY_FILE do not load as a pair ({error})",
            ) from None
    if settings.mqtt_broker_tls_insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def configure_client(client: mqtt.Client, settings: Settings) -> None:
    """Apply MQTT_BROKER_USERNAME/PASSWORD and MQTT_BROKER_TLS* to a paho client."""
    if settings.mqtt_username:
        client.username_pw_set(settings.mqtt_username, settings.mqtt_password)
    if settings.mqtt_broker_tls:
        client.tls_set_context(tls_context(settings))
        if settings.mqtt_broker_tls_insecure:
            client.tls_insecure_set(True)


def check_broker(settings: Settings, timeout: float = 10.0) -> None:
    """Connect once and go; raise BrokerSecurityError if TLS or the credentials are refused.

    A broker that cannot be reached is not an error here: the services reconnect until it
    comes, as they always did. Only answers that retrying cannot change are fatal.
    """
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"bemcom-check-{secrets.token_hex(4)}",
        protocol=mqtt.MQTTv5,
    )
    configure_client(client, settings)
    answered = threading.Event()
    result: dict[str, int] = {}

    def on_connect(_client, _userdata, _flags, reason_code, _properties) -> None:
        result["code"] = reason_code.value
        answered.set()

    def on_disconnect(_client, _userdata, _flags, _reason_code, _properties) -> None:
        answered.set()  # closed before any CONNACK: no code in `result`

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    where = f"{settings.mqtt_broker_host}:{settings.mqtt_broker_port}"
    client.connect_timeout = timeout
    try:
        client.connect(settings.mqtt_broker_host, settings.mqtt_broker_port, keepalive=30)
    except ssl.SSLCertVerificationError as error:
        raise BrokerSecurityError(
            "MQTT_BROKER_CA_FILE",
            f"the certificate of {where} does not verify against it: {error.verify_message} "
            "(MQTT_BROKER_TLS_INSECURE=TRUE skips the check, for tests only)",
        ) from None
    except ssl.SSLError as error:
        # The broker's alert when it wants a client certificate we did not send or it refused.
        cert_problem = "CERTIFICATE" in str(error).upper()
        setting = "MQTT_BROKER_CERT_FILE" if cert_problem else "MQTT_BROKER_TLS"
        raise BrokerSecurityError(
            setting, f"the TLS handshake with {where} failed: {error.reason or error}"
        ) from None
    except OSError as error:
        log.warning("mqtt_broker_not_reachable_yet", broker=where, error=str(error))
        return
    try:
        client.loop_start()
        if not answered.wait(timeout):
            log.warning("mqtt_broker_no_answer_yet", broker=where)
            return
    finally:
        client.disconnect()
        client.loop_stop()
    code = result.get("code")
    if code is None:
        # A TLS listener drops a plain client this way; so may a broker that is restarting.
        log.warning("mqtt_broker_closed_without_answer", broker=where, tls=settings.mqtt_broker_tls)
        return
    if code in _BAD_CREDENTIALS:
        raise BrokerSecurityError(
            "MQTT_BROKER_PASSWORD",
            f"{where} refused user {settings.mqtt_username!r}: bad user name or password",
        )
    if code in _NOT_AUTHORIZED:
        setting = "MQTT_BROKER_USERNAME" if not settings.mqtt_username else "MQTT_BROKER_PASSWORD"
        raise BrokerSecurityError(setting, f"{where} refused the connection: not authorized")
    if code >= 128:
        log.warning("mqtt_connect_refused", broker=where, reason_code=code)


def broker_refused_at_start(settings: Settings) -> bool:
    """The composition roots' check: log the refusal naming the setting; True means exit 2."""
    try:
        check_broker(settings)
    except BrokerSecurityError as error:
        log.error("mqtt_broker_refused", setting=error.setting, error=error.message)
        return True
    return False
