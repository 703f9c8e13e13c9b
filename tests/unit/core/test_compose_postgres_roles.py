"""docker-compose.yml hands PostgreSQL passwords over as files, never as values: no DSN or
variable of the compose file holds one, and the services connect as the store's roles."""

import yaml
from psycopg.conninfo import conninfo_to_dict

from chatchannels.settings import load_settings
from tests.support.paths import REPO


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_no_password_in_the_compose_file():
    services = compose()["services"]
    postgres = services["postgres"]["environment"]
    assert "POSTGRES_PASSWORD" not in postgres
    assert postgres["POSTGRES_PASSWORD_FILE"].endswith("/pg-admin.password")
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if key.endswith("DSN"):
                assert "password" not in conninfo_to_dict(value), (name, key)


def test_the_services_connect_as_the_roles_with_the_secrets_volume():
    services = compose()["services"]
    env = services["processor"]["environment"]
    settings = load_settings(environ=env)
    secrets = env["CHATCHANNELS_SECRETS_DIR"]
    for dsn, user in (
        (settings.postgres_dsn, "chatchannels"),
        (settings.processor_postgres_dsn, "chatchannels_processor"),
        (settings.reader_postgres_dsn, "chatchannels_reader"),
    ):
        parts = conninfo_to_dict(dsn)
        assert (parts["user"], parts["passfile"]) == (user, f"{secrets}/pgpass")
    for name in ("init", "processor", "publisher", "search"):
        mounts = services[name]["volumes"]
        assert f"secrets:{secrets}" in mounts, name
