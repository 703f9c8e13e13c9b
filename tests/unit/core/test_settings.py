from pathlib import Path

import pytest

from chatchannels.publishers.access.rules import Allow, Permissions, Rule
from chatchannels.settings import SettingsError, load_settings, settings_env


def test_defaults_do_not_clash_with_a_system_postgres():
    settings = load_settings(environ={})
    assert settings.pg_port != 5432
    assert settings.kafka_bootstrap == "127.0.0.1:29092"
    passfile = settings.stack_dir / "secrets" / "pgpass"
    assert settings.postgres_dsn == (
        f"postgresql://postgres@127.0.0.1:55432/chatchannels?passfile={passfile}"
    )
    assert settings.stack_dir.is_absolute()


def test_layers_file_then_environment_then_overrides(tmp_path):
    config = tmp_path / "cc.toml"
    config.write_text('pg_port = 6000\ntopic = "from-file"\npartitions = 7\nsomething_else = 1\n')
    env = {"CHATCHANNELS_CONFIG": str(config), "CHATCHANNELS_TOPIC": "from-env"}
    settings = load_settings(environ=env, partitions=9)
    assert settings.pg_port == 6000
    assert settings.topic == "from-env"
    assert settings.partitions == 9
    assert settings.extra == {"something_else": 1}


def test_explicit_addresses_win_over_the_stack():
    env = {"CHATCHANNELS_KAFKA": "kafka:9092", "CHATCHANNELS_DSN": "postgresql://db/x"}
    settings = load_settings(environ=env)
    assert settings_env(settings)["CHATCHANNELS_KAFKA"] == "kafka:9092"
    assert settings_env(settings)["CHATCHANNELS_DSN"] == "postgresql://db/x"


def test_bad_values_name_the_key_and_the_source(tmp_path):
    with pytest.raises(SettingsError, match="'kafka_port' from CHATCHANNELS_KAFKA_PORT"):
        load_settings(environ={"CHATCHANNELS_KAFKA_PORT": "ninety"})
    broken = tmp_path / "broken.toml"
    broken.write_text("pg_port = [")
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(config_file=broken, environ={})


def test_stack_dir_from_environment_is_made_absolute():
    settings = load_settings(environ={"CHATCHANNELS_STACK_DIR": "rel/stack"})
    assert settings.stack_dir == Path.cwd() / "rel" / "stack"


def test_the_schema_must_be_a_plain_identifier():
    assert load_settings(environ={"CHATCHANNELS_SCHEMA": "tenant_2"}).schema == "tenant_2"
    with pytest.raises(SettingsError, match="'schema': 'a;b' is not a lowercase identifier"):
        load_settings(environ={"CHATCHANNELS_SCHEMA": "a;b"})


def test_permissions_are_read_from_their_table_and_checked_at_load(tmp_path):
    assert load_settings(environ={}).permissions == Permissions()
    config = tmp_path / "cc.toml"
    config.write_text(
        "[[permissions.rules]]\nallow = { members = true }\n\n"
        '[[permissions.rules]]\ntitles = ["News*"]\nallow = true\n'
    )
    assert load_settings(config_file=config, environ={}).permissions == Permissions(
        (Rule(allow=Allow(members=True)), Rule(titles=("News*",), allow=Allow(everyone=True)))
    )
    config.write_text('[[permissions.rules]]\nallow = true\n\n[[permissions.rules]]\nchats = "x"\n')
    with pytest.raises(SettingsError, match=f"permissions rule 2 from {config}: has no `allow`"):
        load_settings(config_file=config, environ={})
    with pytest.raises(SettingsError, match="from CHATCHANNELS_PERMISSIONS: unknown key 'rulez'"):
        load_settings(environ={"CHATCHANNELS_PERMISSIONS": '{"rulez": []}'})
