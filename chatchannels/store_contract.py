"""What the processors and the publishers agree on about the canonical store beyond its
tables (processors/pg/migrations/*.sql), in one place that neither side owns: the processor
NOTIFYs this channel when a batch adds changes (delivered on commit), and the publishers'
change loop LISTENs on it; a store in another schema is a DSN whose search_path names it."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict, make_conninfo

NOTIFY_CHANNEL = "chatchannels_changes"


def schema_dsn(dsn: str, schema: str) -> str:
    """The DSN with `schema` as the session's search_path (other options kept)."""
    # Schema names are plain identifiers (settings.SCHEMA_NAME, rebuild.py), so no quoting.
    options = conninfo_to_dict(dsn).get("options") or ""
    return make_conninfo(dsn, options=f"{options} -c search_path={schema}".strip())
