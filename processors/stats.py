"""`chatchannels stats`: the store's counts next to Kafka's end offsets (lag per partition)."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from chatchannels.processors.store import Store
from chatchannels.settings import Settings
from chatchannels.stack import kafka


def collect_stats(settings: Settings, *, group: str, schema: str = "public") -> dict[str, Any]:
    """One JSON-ready object with stable keys; `lag` is null when Kafka cannot be reached
    (`kafka_error` says why), so the store's side is still reported."""
    store = Store.connect(settings.postgres_dsn, schema, consumer=group)
    try:
        found = store.read_stats(settings.topic)
    finally:
        store.close()
    found.update(topic=settings.topic, consumer=group, lag=None, kafka_error=None)
    from kafka.errors import KafkaError

    try:
        end = kafka.end_offsets(settings, settings.topic)
    except KafkaError as exc:
        found["kafka_error"] = f"{type(exc).__name__}: {exc}"
        return found
    done = found["next_offsets"]
    found["lag"] = {str(p): o - done.get(p, 0) for p, o in sorted(end.items())}
    found["next_offsets"] = {str(p): o for p, o in done.items()}
    return found


def render_stats(found: dict[str, Any]) -> None:
    console = Console()
    table = Table(title=f"processor {found['consumer']} on {found['topic']}", show_header=False)
    for key in (
        "events_consumed",
        "observations",
        "messages",
        "merged_across_hosts",
        "deleted_messages",
        "revisions",
        "aliases",
        "chats",
        "users",
        "last_change_seq",
        "dead_letters",
        "dead_letters_pending",
    ):
        table.add_row(key.replace("_", " "), f"{found[key]:,}")
    console.print(table)
    hosts = Table(title="hosts")
    for column in ("host", "clock offset (s)", "last seq", "host messages"):
        hosts.add_column(column)
    for host, h in found["hosts"].items():
        hosts.add_row(host, f"{h['offset_s']:+.3f}", str(h["last_seq"]), str(h["host_messages"]))
    console.print(hosts)
    if found["lag"] is None:
        print(f"lag unknown: {found['kafka_error']}", file=sys.stderr)
    else:
        lag = ", ".join(f"{p}: {n:,}" for p, n in found["lag"].items())
        console.print(f"lag per partition: {lag}")
