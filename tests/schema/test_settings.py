import pytest

from schema.settings import SettingsError, load_settings


def test_defaults_are_the_originals():
    settings = load_settings({})
    assert settings.mqtt_broker_port == 1883
    assert settings.activate_history_extension is False
    assert settings.activate_control_extension is False
    assert settings.n_mtd_write_threads == 1
    assert settings.django_allowed_hosts == ["localhost"]
    assert settings.db_user == "bemcom" and settings.db_port == 5432
    assert not settings.uses_postgres
    # Values are answered as the original answers them unless exact values are asked for.
    assert settings.exact_values is False
    assert load_settings({"BEMCOM_EXACT_VALUES": "TRUE"}).exact_values is True


def test_original_variables_are_read():
    settings = load_settings(
        {
            "MQTT_BROKER_HOST": "broker.example.org",
            "MQTT_BROKER_PORT": "1884",
            "ACTIVATE_HISTORY_EXTENSION": "TRUE",
            "DJANGOAPIDB_HOST": "db",
            "N_MTD_WRITE_THREADS": "8",
            "ROOT_PATH": "bemcom/",
            "DJANGO_ALLOWED_HOSTS": '["bemcom.example.org"]',
        }
    )
    assert settings.mqtt_broker_host == "broker.example.org"
    assert settings.mqtt_broker_port == 1884
    assert settings.activate_history_extension
    assert settings.uses_postgres
    assert settings.n_mtd_write_threads == 8
    assert settings.root_path == "/bemcom"
    assert settings.django_allowed_hosts == ["bemcom.example.org"]


def test_forwarded_allow_ips_is_uvicorns_variable():
    assert load_settings({}).forwarded_allow_ips == "127.0.0.1,::1"  # uvicorn's default
    given = load_settings({"FORWARDED_ALLOW_IPS": " 10.0.0.5, 192.168.0.0/24 ,::1"})
    assert given.forwarded_allow_ips == "10.0.0.5,192.168.0.0/24,::1"
    assert load_settings({"FORWARDED_ALLOW_IPS": "*"}).forwarded_allow_ips == "*"
    for bad in ("proxy.example.org", "10.0.0.1,,10.0.0.2"):
        with pytest.raises(SettingsError) as error:
            load_settings({"FORWARDED_ALLOW_IPS": bad})
        assert error.value.variable == "FORWARDED_ALLOW_IPS"
        assert "FORWARDED_ALLOW_IPS" in str(error.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MQTT_BROKER_PORT", "abc"),
        ("MQTT_BROKER_PORT", "70000"),
        ("ACTIVATE_HISTORY_EXTENSION", "yes please"),
        ("N_MTD_WRITE_THREADS", "0"),
        ("LOGLEVEL", "LOUD"),
        ("DJANGO_ALLOWED_HOSTS", "localhost"),
        ("INGESTD_RECEIVE_MAXIMUM", "100000"),
        ("READAPI_MAX_BODY_BYTES", "1mb"),
        ("READAPI_HEADER_TIMEOUT_SECONDS", "0"),
        ("READAPI_BODY_TIMEOUT_SECONDS", "1.5"),
        ("READAPI_LOGIN_MAX_FAILURES", "-1"),
        ("READAPI_LOGIN_MAX_FAILURES_PER_IP", "ten"),
        ("READAPI_LOGIN_THROTTLE_SECONDS", "0"),
        ("BEMCOM_EXACT_VALUES", "exact"),
    ],
)
def test_a_bad_value_names_its_variable(variable, value):
    with pytest.raises(SettingsError) as error:
        load_settings({variable: value})
    assert error.value.variable == variable
    assert variable in str(error.value)


def test_listen_address_defaults_to_every_interface_and_is_checked():
    assert load_settings({}).http_host == "0.0.0.0"
    assert load_settings({}).http_local_address == "127.0.0.1"
    assert load_settings({"BEMCOM_HTTP_HOST": "127.0.0.1"}).http_host == "127.0.0.1"
    assert load_settings({"BEMCOM_HTTP_HOST": "::1"}).http_local_address == "[::1]"
    assert load_settings({"BEMCOM_HTTP_HOST": "api.example.org"}).http_host == "api.example.org"
    for bad in ("127.0.0.1:8080", "http://localhost", "two words"):
        with pytest.raises(SettingsError) as error:
            load_settings({"BEMCOM_HTTP_HOST": bad})
        assert error.value.variable == "BEMCOM_HTTP_HOST"
