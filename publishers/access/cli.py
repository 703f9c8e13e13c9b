"""`chatchannels users`: the readers of `serve`'s built-in sign-in, their feed tokens, and
the map from Skype handles to their names. Flags in, one readers_store call, output out.

Runs against the store with the admin's DSN (`--dsn/--schema`): `serve` only reads these
tables. Passwords come from a prompt or `--password-file` (owner-only, like every secret),
never from the command line, where other users' `ps` would show them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from chatchannels.options import json_option, store_options
from chatchannels.settings import Settings

password_file_option = click.option(
    "--password-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read the password from this file (mode 0600) instead of a prompt.",
)


@contextmanager
def _store(settings: Settings) -> Iterator:
    import psycopg

    from chatchannels.store_contract import schema_dsn

    with psycopg.connect(schema_dsn(settings.postgres_dsn, settings.schema), autocommit=True) as c:
        yield c


def _password(password_file: Path | None) -> str:
    from chatchannels.publishers.access.passwords import hash_password
    from chatchannels.secret_files import read_secret

    if password_file is not None:
        return hash_password(read_secret(password_file))
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    return hash_password(password)


def _emit(as_json: bool, payload: object, text: str) -> None:
    click.echo(json.dumps(payload, sort_keys=True) if as_json else text)


@click.group()
def users() -> None:
    """Readers who sign in to `serve`, their feed tokens, and Skype handles -> user names."""


@users.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May read every chat.")
@click.option("--group", "groups", multiple=True, help="A group the reader is in (repeatable).")
@click.option(
    "--no-password", is_flag=True, help="No built-in sign-in: the proxy names this reader."
)
@password_file_option
@store_options
@json_option
@click.pass_obj
def add(
    settings: Settings,
    name: str,
    admin: bool,
    groups: tuple[str, ...],
    no_password: bool,
    password_file: Path | None,
    as_json: bool,
) -> None:
    """Add the reader NAME (asks for a password unless --no-password or --password-file)."""
    from chatchannels.publishers.access import readers_store

    if no_password and password_file is not None:
        raise click.UsageError("--no-password and --password-file exclude each other")
    password_hash = None if no_password else _password(password_file)
    with _store(settings) as conn:
        record = readers_store.add_reader(conn, name, password_hash, admin, groups)
    _emit(as_json, record.as_json(), f"added reader {record.name}")


@users.command("passwd")
@click.argument("name")
@password_file_option
@store_options
@click.pass_obj
def passwd(settings: Settings, name: str, password_file: Path | None) -> None:
    """Change NAME's password; every session NAME has open ends."""
    from chatchannels.publishers.access import readers_store

    password_hash = _password(password_file)
    with _store(settings) as conn:
        readers_store.set_password(conn, name, password_hash)
    click.echo(f"changed the password of {name}; its sessions have ended")


@users.command("remove")
@click.argument("name")
@store_options
@click.pass_obj
def remove(settings: Settings, name: str) -> None:
    """Remove the reader NAME, its feed tokens and its handles; its sessions end."""
    from chatchannels.publishers.access import readers_store

    with _store(settings) as conn:
        readers_store.remove_reader(conn, name)
    click.echo(f"removed reader {name}")


@users.command("list")
@store_options
@json_option
@click.pass_obj
def list_(settings: Settings, as_json: bool) -> None:
    """The readers: name, admin, groups, whether they have a password."""
    from chatchannels.publishers.access import readers_store

    with _store(settings) as conn:
        records = readers_store.list_readers(conn)
    lines = [
        f"{r.name}\t{'admin' if r.admin else '-'}\t{','.join(sorted(r.groups)) or '-'}"
        f"\t{'password' if r.password_hash else 'proxy only'}"
        for r in records
    ]
    _emit(as_json, [r.as_json() for r in records], "\n".join(lines))


@users.group("token")
def token() -> None:
    """Feed tokens: `?token=` on feed URLs, for Atom readers that cannot sign in."""


@token.command("add")
@click.argument("name")
@click.option("--label", default="", help="What the token is for (a feed reader's name).")
@store_options
@json_option
@click.pass_obj
def token_add(settings: Settings, name: str, label: str, as_json: bool) -> None:
    """A new feed token for NAME, printed once: only its digest is kept."""
    from chatchannels.publishers.access import readers_store

    with _store(settings) as conn:
        record, secret = readers_store.add_token(conn, name, label)
    payload = {**record.as_json(), "token": secret}
    _emit(as_json, payload, f"token {record.id} for {name}: add ?token={secret} to feed URLs")


@token.command("list")
@click.argument("name", required=False)
@store_options
@json_option
@click.pass_obj
def token_list(settings: Settings, name: str | None, as_json: bool) -> None:
    """The feed tokens (of NAME, or everyone's): id, reader, label, revoked or not."""
    from chatchannels.publishers.access import readers_store

    with _store(settings) as conn:
        records = readers_store.list_tokens(conn, name)
    lines = [
        f"{t.id}\t{t.reader}\t{t.label or '-'}\t"
        + (f"revoked {t.revoked_utc:%Y-%m-%d %H:%M}" if t.revoked_utc else "live")
        for t in records
    ]
    _emit(as_json, [t.as_json() for t in records], "\n".join(lines))


@token.command("revoke")
@click.argument("token_id", metavar="ID", type=int)
@store_options
@click.pass_obj
def token_revoke(settings: Settings, token_id: int) -> None:
    """Revoke the feed token ID: its URLs stop working within a second."""
    from chatchannels.publishers.access import readers_store

    with _store(settings) as conn:
        record = readers_store.revoke_token(conn, token_id)
    click.echo(f"revoked token {record.id} of {record.reader}")


@users.group("handles")
def handles() -> None:
    """Which intranet user each Skype handle is (the `members` permission rule reads it)."""


@handles.command("set")
@click.argument("handle")
@click.argument("name")
@store_options
@click.pass_obj
def handles_set(settings: Settings, handle: str, name: str) -> None:
    """Map the Skype HANDLE to the user NAME (replacing an earlier mapping)."""
    from chatchannels.publishers.access import readers_store

    with _store(settings) as conn:
        readers_store.set_handle(conn, handle, name)
    click.echo(f"{handle} is {name}")


@handles.command("unset")
@click.argument("handle")
@store_options
@click.pass_obj
def handles_unset(settings: Settings, handle: str) -> None:
    """Forget the mapping of the Skype HANDLE."""
    from chatchannels.publishers.access import readers_store

    with _store(settings) as conn:
        readers_store.unset_handle(conn, handle)
    click.echo(f"{handle} is no one's")


@handles.command("list")
@store_options
@json_option
@click.pass_obj
def handles_list(settings: Settings, as_json: bool) -> None:
    """Every mapped handle and its user name."""
    from chatchannels.publishers.access import readers_store

    with _store(settings) as conn:
        rows = readers_store.list_handles(conn)
    _emit(
        as_json,
        [{"handle": h, "reader": r} for h, r in rows],
        "\n".join(f"{h}\t{r}" for h, r in rows),
    )
