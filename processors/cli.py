"""`chatchannels db` (and, with the processor, `process`, `stats`, `deadletters`)."""

from __future__ import annotations

import click

from chatchannels.settings import Settings


@click.group()
def db() -> None:
    """The canonical store's schema in PostgreSQL."""


@db.command()
@click.option("--schema", default="public", show_default=True, help="PostgreSQL schema to migrate.")
@click.pass_obj
def migrate(settings: Settings, schema: str) -> None:
    """Apply pending schema migrations (idempotent)."""
    from chatchannels.processors.migrate import migrate as run_migrations

    applied = run_migrations(settings.postgres_dsn, schema)
    for migration in applied:
        click.echo(f"applied {migration.version:04d}_{migration.name}")
    if not applied:
        click.echo("schema is up to date")
