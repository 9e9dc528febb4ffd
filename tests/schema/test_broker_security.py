"""The start-up check of schema/broker_security.py against the private TLS + password broker:
what is fatal (names the setting) and what is only a warning (the services retry)."""

from __future__ import annotations

import pytest

from schema.broker_security import BrokerSecurityError, check_broker
from schema.settings import load_settings
from tests.support.broker import free_port
from tests.support.secured_broker import Secured, secured

__all__ = ["secured"]


def check(env: dict[str, str]) -> None:
    check_broker(load_settings(env), timeout=10)


def refused_setting(env: dict[str, str]) -> str:
    with pytest.raises(BrokerSecurityError) as error:
        check(env)
    return error.value.setting


def test_right_settings_pass(secured: Secured):
    check(secured.env())


def test_insecure_skips_verification_only_when_asked(secured: Secured):
    other = {**secured.env(), "MQTT_BROKER_CA_FILE": str(secured.other_ca)}
    assert refused_setting(other) == "MQTT_BROKER_CA_FILE"
    check({**other, "MQTT_BROKER_TLS_INSECURE": "TRUE"})


def test_what_each_refusal_names(secured: Secured, tmp_path):
    assert refused_setting(secured.env(password="wrong")) == "MQTT_BROKER_PASSWORD"
    assert refused_setting(secured.env(user=None)) == "MQTT_BROKER_USERNAME"
    missing = str(tmp_path / "nothing.pem")
    assert refused_setting({**secured.env(), "MQTT_BROKER_CERT_FILE": missing}) == (
        "MQTT_BROKER_CERT_FILE"
    )
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    assert refused_setting({**secured.env(), "MQTT_BROKER_CA_FILE": str(garbage)}) == (
        "MQTT_BROKER_CA_FILE"
    )


def test_a_client_certificate_is_offered(secured: Secured):
    env = {
        **secured.env(),
        "MQTT_BROKER_CERT_FILE": str(secured.files.cert_file),
        "MQTT_BROKER_KEY_FILE": str(secured.files.key_file),
    }
    check(env)


def test_unreachable_or_plain_is_not_fatal(secured: Secured):
    # Nothing listening: the services start and keep retrying, as without TLS.
    check({**secured.env(), "MQTT_BROKER_PORT": str(free_port())})
    # A plain client on the TLS port: the broker hangs up; a warning, not an exit.
    check({**secured.env(), "MQTT_BROKER_TLS": "FALSE"})
