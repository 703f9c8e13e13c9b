"""`chatchannels replay` against real Kafka and PostgreSQL: the rebuilt store is the live one.

Each test processes a few hundred generated events of three hosts (edits, deletions, a
backfilling host) into the live schema `public`, then replays the topic (or a copy of it
with another partition count or host interleaving) and compares digests of the canonical
content (processors/replay/archive.py).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from chatchannels.cli import main
from chatchannels.processors.consumer import ProcessOptions, run_processor
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.pg.offsets import DEFAULT_CONSUMER, read_offsets
from chatchannels.processors.replay.archive import archive_digest, read_archive
from chatchannels.processors.replay.rebuild import (
    READER_TABLES,
    ReplayError,
    ReplayMismatch,
    ReplayOptions,
    replay,
    schema_exists,
)
from chatchannels.processors.replay.topic_copy import copy_topic
from chatchannels.publishers.access.readers_store import (
    add_reader,
    add_token,
    read_token_reader,
    set_handle,
)
from chatchannels.publishers.access.tokens import token_digest
from chatchannels.publishers.publishing import publish
from chatchannels.publishers.site import STATE_FILE
from chatchannels.replay_wiring import PUBLISHED_SITE
from chatchannels.stack.kafka import list_topics
from chatchannels.stack.kafka_principals import drop_topics
from tests.support.processor_harness import generate_events, now_base, process_once, produce

pytestmark = pytest.mark.integration

N_EVENTS = 300


@pytest.fixture
def settings(stack, kafka_topic, pg_dsn):
    migrate(pg_dsn)
    return stack.replace(topic=kafka_topic, dsn=pg_dsn)


@pytest.fixture
def live(settings):
    """The topic with N_EVENTS events, processed into `public`: the live store."""
    produce(settings, settings.topic, generate_events(N_EVENTS, base=now_base(1), seed=7))
    summary = process_once(settings, settings.topic)
    assert summary.records > 0 and summary.dead_letters == 0
    return settings


@pytest.fixture
def copies(stack):
    """Names for copy topics, deleted afterwards."""
    made: list[str] = []

    def name() -> str:
        made.append(f"test.copy.{uuid.uuid4().hex[:12]}")
        return made[-1]

    yield name
    existing = set(list_topics(stack))
    drop_topics(stack, [t for t in made if t in existing])


def live_digest(dsn: str, schema: str = "public") -> tuple[str, int]:
    return archive_digest(read_archive(dsn, schema))


def cli_replay(settings, *args: str):
    return CliRunner().invoke(
        main,
        [
            "replay",
            "--topic",
            settings.topic,
            "--dsn",
            settings.postgres_dsn,
            "--kafka",
            settings.kafka_bootstrap,
            "--quiet",
            *args,
        ],
    )


def schemas(dsn: str, prefix: str) -> list[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s ORDER BY nspname",
            (prefix + "%",),
        ).fetchall()
    return [r[0] for r in rows]


def test_replay_gives_the_live_digest_and_two_replays_agree(live) -> None:
    digest, count = live_digest(live.postgres_dsn)
    assert count > 50

    first = replay(live, ReplayOptions(topic=live.topic, verify=True))
    assert first.verify is not None and first.verify.equal, first.verify
    assert (first.digest, first.messages) == (digest, count)
    assert first.offsets == read_offsets(live.postgres_dsn, "public", DEFAULT_CONSUMER, live.topic)
    assert sum(first.offsets.values()) == first.records
    # Without --keep nothing is left behind.
    assert not schema_exists(live.postgres_dsn, first.schema)

    result = cli_replay(live, "--verify", "--json")
    assert result.exit_code == 0, result.output
    second = json.loads(result.output)
    assert second["digest"] == digest and second["verify"]["equal"] is True
    assert second["schema"] != first.schema and second["swapped"] is False
    assert set(second) >= {"records", "offsets", "messages", "seconds", "dead_letters"}


def test_another_partition_count_and_host_interleaving_give_the_same_digest(live, copies) -> None:
    digest, count = live_digest(live.postgres_dsn)
    for partitions, seed in ((5, None), (1, 11), (2, 12)):
        topic = copies()
        copied = copy_topic(live, live.topic, topic, partitions=partitions, shuffle_seed=seed)
        assert copied == sum(
            read_offsets(live.postgres_dsn, "public", DEFAULT_CONSUMER, live.topic).values()
        )
        result = replay(
            live.replace(topic=topic),
            ReplayOptions(topic=topic, create_time_is_append_time=True),
        )
        assert result.records == copied
        assert (result.digest, result.messages) == (digest, count), (partitions, seed)


def test_verify_fails_and_names_the_difference_when_the_live_store_was_tampered_with(
    live,
) -> None:
    dsn = live.postgres_dsn
    with psycopg.connect(dsn) as conn:
        (victim,) = conn.execute("SELECT id FROM messages ORDER BY id LIMIT 1").fetchone()
        conn.execute("UPDATE messages SET body_markup = 'tampered' WHERE id = %s", (victim,))
    before = live_digest(dsn)

    result = cli_replay(live, "--verify", "--swap", "--no-site")
    assert result.exit_code == 1, result.output
    assert "replay differs from the live store" in result.output
    assert f"message {victim}" in result.output
    assert "body_markup differs: live 'tampered'" in result.output
    # Nothing swapped; the rebuilt store is kept for inspection.
    assert schemas(dsn, "previous_") == []
    assert live_digest(dsn) == before
    kept = schemas(dsn, "replay_")
    assert len(kept) == 1 and kept[0] in result.output

    with pytest.raises(ReplayMismatch) as caught:
        replay(live, ReplayOptions(topic=live.topic, verify=True, schema="replay_again"))
    assert [d for d in caught.value.result.verify.differences if victim in d]

    # Offsets the topic never reached (another topic's store?) are refused, not waited for.
    with psycopg.connect(dsn) as conn:
        conn.execute("UPDATE offsets SET next_offset = next_offset + 1000")
    with pytest.raises(ReplayError, match="past the end of"):
        replay(live, ReplayOptions(topic=live.topic, verify=True))
    assert schemas(dsn, "replay_") == sorted([kept[0], "replay_again"])


def _reader_rows(conn) -> tuple[list, list, list]:
    return tuple(
        conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall() for table in READER_TABLES
    )


def test_swap_only_after_verify_keeps_the_previous_store_and_swaps_the_site(
    live, tmp_path: Path
) -> None:
    dsn = live.postgres_dsn
    digest, _ = live_digest(dsn)
    with pytest.raises(ReplayError, match="--swap needs --verify"):
        replay(live, ReplayOptions(topic=live.topic, swap=True))
    site = tmp_path / "site"
    publish(dsn, site, once=True)
    old_pages = sorted(p.relative_to(site) for p in site.rglob("*.html"))
    # Who reads the site is not in the log: the swapped-in store keeps the live one's.
    with psycopg.connect(dsn, autocommit=True) as conn:
        add_reader(conn, "ann", "argon2-hash-of-ann", admin=True)
        _, token = add_token(conn, "ann", "feeds")
        set_handle(conn, "alice", "ann")
        readers_before = _reader_rows(conn)

    # A plain site folder: renamed away, the rebuilt one renamed in.
    first = replay(
        live,
        ReplayOptions(topic=live.topic, verify=True, swap=True, site_dir=site),
        site=PUBLISHED_SITE,
    )
    previous = first.previous_schema
    assert first.verify is not None and first.verify.manifests is not None
    assert first.verify.manifests.months > 0 and first.verify.manifests.differing == ()
    assert schemas(dsn, "previous_") == [previous]
    assert not schema_exists(dsn, first.schema)
    assert live_digest(dsn) == live_digest(dsn, previous) == (digest, first.messages)
    with psycopg.connect(dsn) as conn:
        # The rebuilt store numbered its own changes; its offsets are the live consumer's.
        assert conn.execute("SELECT to_regclass('public.schema_migrations')").fetchone()[0]
        # PostgreSQL gives every role USAGE on `public`; the swapped-in schema keeps that.
        assert conn.execute(
            "SELECT a.privilege_type FROM pg_namespace n, aclexplode(n.nspacl) a"
            " WHERE n.nspname = 'public' AND a.grantee = 0"
        ).fetchall() == [("USAGE",)]
    assert read_offsets(dsn, "public", DEFAULT_CONSUMER, live.topic) == first.offsets
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert _reader_rows(conn) == readers_before
        assert read_token_reader(conn, token_digest(token)).name == "ann"
        # A token made after the swap gets a new id, not one of the carried ones.
        assert add_token(conn, "ann", "later")[0].id > readers_before[1][0][0]
    assert first.swap is not None and first.swap.previous == site.with_name(
        f"site.previous-{first.swap.stamp}"
    )
    assert site.is_dir() and not site.is_symlink() and (site / STATE_FILE).is_file()
    assert sorted(p.relative_to(site) for p in site.rglob("*.html")) == old_pages

    # A processor started on the swapped store resumes where the replay stopped.
    assert process_once(live, live.topic).records == 0

    # A symlinked site: one rename of a new link; --drop-previous removes the old ones.
    site.rename(tmp_path / "site.v1")
    site.symlink_to("site.v1")
    second = replay(
        live,
        ReplayOptions(topic=live.topic, verify=True, swap=True, site_dir=site, drop_previous=True),
        site=PUBLISHED_SITE,
    )
    assert site.is_symlink() and site.resolve() == tmp_path / f"site.replay-{second.swap.stamp}"
    assert not (tmp_path / "site.v1").exists()
    assert schemas(dsn, "previous_") == [previous]
    assert live_digest(dsn)[0] == digest
    assert sorted(p.relative_to(site) for p in site.rglob("*.html")) == old_pages


def test_verify_names_the_chat_months_whose_site_manifest_differs(live, tmp_path: Path) -> None:
    site = tmp_path / "site"
    publish(live.postgres_dsn, site, once=True)
    manifests = sorted(site.glob("chats/*/*.manifest.json"))
    assert len(manifests) >= 2
    changed, removed = (json.loads(m.read_text()) for m in manifests[:2])
    manifests[0].write_text(json.dumps({**changed, "sha256": "0" * 64}))
    manifests[1].unlink()

    result = cli_replay(live, "--verify", "--json", "--site-dir", str(site))
    assert result.exit_code == 0, result.output
    check = json.loads(result.output)["verify"]["manifests"]
    assert check["site_dir"] == str(site) and check["months"] == len(manifests)
    assert sorted((d["chat"], d["month"]) for d in check["differing"]) == sorted(
        (m["chat"], m["month"]) for m in (changed, removed)
    )
    text = cli_replay(live, "--verify", "--site-dir", str(site))
    assert f"{len(manifests):,} chat-months, 2 differ" in text.output
    assert f"  {changed['chat']} {changed['month']}" in text.output


def test_replay_while_the_live_processor_keeps_consuming_ends_consistent(live) -> None:
    """New events arrive and are processed during the replay: the check is still made at
    one log position, the live snapshot's, which the replay catches up to."""
    dsn = live.postgres_dsn
    started = read_offsets(dsn, "public", DEFAULT_CONSUMER, live.topic)
    stop = threading.Event()
    processor = threading.Thread(
        target=run_processor,
        args=(live, ProcessOptions(topic=live.topic, batch_records=50, batch_wait_s=0.1), stop),
    )
    processor.start()
    moved = threading.Event()

    def more_events_meanwhile(stage: str, done: int, total: int | None) -> None:
        # During the replay's first pass, the live store moves on.
        if stage != "replay" or moved.is_set():
            return
        moved.set()
        others = (("dave-pc", 5.0, 0), ("erin-pc", -20.0, 3600))
        produce(live, live.topic, generate_events(150, base=now_base(1), seed=8, hosts=others))
        deadline = time.monotonic() + 60
        while True:
            now = read_offsets(dsn, "public", DEFAULT_CONSUMER, live.topic)
            if sum(now.values()) > sum(started.values()):
                return
            assert time.monotonic() < deadline, f"live store stayed at {now}"
            threading.Event().wait(0.1)

    try:
        result = replay(
            live, ReplayOptions(topic=live.topic, verify=True), progress=more_events_meanwhile
        )
    finally:
        stop.set()
        processor.join(60)
    assert moved.is_set()
    assert result.verify is not None and result.verify.equal, result.verify
    assert sum(result.offsets.values()) > sum(started.values())
    assert result.records == sum(result.offsets.values())
