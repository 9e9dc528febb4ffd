from ingestd.identity import client_id_for
from schema.settings import load_settings


def test_explicit_client_id_is_kept():
    env = {"INGESTD_CLIENT_ID": "site-a", "INGESTD_SHARE_GROUP": "g"}
    assert client_id_for(load_settings(env), env, "host1") == "site-a"


def test_without_share_group_the_default_is_kept():
    assert client_id_for(load_settings({}), {}, "host1") == "bemcom-ingestd"


def test_share_group_without_client_id_gets_one_per_host():
    env = {"INGESTD_SHARE_GROUP": "g"}
    settings = load_settings(env)
    first = client_id_for(settings, env, "3f2a9c1b7d0e")
    assert first == "bemcom-ingestd-3f2a9c1b7d0e"
    assert client_id_for(settings, env, "other") != first
