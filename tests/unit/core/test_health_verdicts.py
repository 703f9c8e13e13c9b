"""`status`'s verdicts (chatchannels/health/verdicts.py): facts in, reasons out."""

from __future__ import annotations

from dataclasses import replace

from chatchannels.health.verdicts import (
    ProcessorFacts,
    PublisherFacts,
    PublishingFacts,
    ServeFacts,
    Service,
    Status,
    Thresholds,
    judge,
)
from chatchannels.processors.completeness import Run, assess

NOW = 10_000.0
S = "a" * 32


def healthy() -> Status:
    runs = [Run("alice-pc", S, 1, 9, 9_000.0, 9_990.0, "skype-api")]
    return Status(
        checked_utc=NOW,
        thresholds=Thresholds(silent_after_s=600, stalled_after_s=60),
        services=(
            Service("Kafka", "127.0.0.1:29092", None, "API 4.3"),
            Service("PostgreSQL", "host=127.0.0.1", None, "15.18"),
        ),
        completeness=assess(runs, [], NOW, 600),
        store_problem=None,
        processor=ProcessorFacts("proc", "raw", {0: 0, 1: 0}, NOW - 5_000, {}),
        publishing=PublishingFacts(
            "site",
            40,
            (PublisherFacts("site", 40, NOW - 5_000), PublisherFacts("search", 40, NOW - 5_000)),
            NOW - 5_000,
            1234,
        ),
        serve=ServeFacts(None),
    )


def verdict(status: Status) -> list[str]:
    return list(judge(status).reasons)


def test_a_pipeline_with_nothing_wrong_is_healthy_and_idle_is_not_wrong() -> None:
    status = judge(healthy())
    assert status.healthy and status.reasons == ()
    found = status.as_json()
    assert found["healthy"] is True
    assert found["processor"]["lag"] == {"0": 0, "1": 0} and found["processor"]["lag_total"] == 0
    assert found["publishers"]["site"]["behind"] == 0
    (host,) = found["hosts"]
    assert host["spool_backlog"] is None and host["last_seq"] == 9 and host["gaps"] == []


def test_a_frozen_broker_is_a_reason_and_the_lag_is_then_unknown() -> None:
    status = healthy()
    kafka = Service("Kafka", "127.0.0.1:29092", "the Kafka broker (pid 7) is stopped (SIGSTOP)")
    status = replace(
        status,
        services=(kafka, status.services[1]),
        processor=replace(status.processor, lag=None),
    )
    assert verdict(status) == [
        "Kafka at 127.0.0.1:29092 does not answer: the Kafka broker (pid 7) is stopped (SIGSTOP)"
    ]
    assert judge(status).as_json()["processor"]["lag_total"] is None


def test_a_gap_and_a_silent_host_are_reasons() -> None:
    runs = [
        Run("alice-pc", S, 1, 3, 1.0, 2.0, "skype-api"),
        Run("alice-pc", S, 5, 9, 3.0, 9_990.0, "skype-api"),
        Run("bob-pc", S, 1, 2, 1.0, 8_000.0, "skype-api"),
    ]
    status = replace(healthy(), completeness=assess(runs, [], NOW, 600))
    assert verdict(status) == [
        f"sequence gap: host alice-pc session {S}: seq 4 missing"
        " (1 event lost between a spool and the log)",
        "host bob-pc silent for 2000 s (more than 600 s)",
    ]


def test_lag_is_a_reason_only_once_the_processor_stopped_moving() -> None:
    moving = replace(healthy().processor, lag={0: 500}, last_batch_utc=NOW - 10)
    assert verdict(replace(healthy(), processor=moving)) == []
    stalled = replace(moving, last_batch_utc=NOW - 61)
    assert verdict(replace(healthy(), processor=stalled)) == [
        "processor proc stalled: 500 records of raw not applied, last batch 61 s ago"
    ]
    never = replace(moving, last_batch_utc=None)
    assert "no batch recorded" in verdict(replace(healthy(), processor=never))[0]


def test_dead_letters_waiting_are_a_reason_by_kind() -> None:
    waiting = replace(healthy().processor, dead_letters={"schema": 2, "line": 1})
    assert verdict(replace(healthy(), processor=waiting)) == [
        "3 dead letters not redriven (line 1, schema 2): see `chatchannels deadletters list`"
    ]


def test_a_publisher_behind_and_idle_or_never_run_is_a_reason() -> None:
    status = healthy()
    behind = replace(status.publishing, newest_change_seq=45)
    assert verdict(replace(status, publishing=behind)) == [
        "publisher site stalled: 5 changes behind the store, last moved 5000 s ago",
        "publisher search stalled: 5 changes behind the store, last moved 5000 s ago",
    ]
    busy = replace(
        behind,
        publishers=(PublisherFacts("site", 40, NOW - 1), PublisherFacts("search", 45, NOW - 1)),
    )
    assert verdict(replace(status, publishing=busy)) == []
    never = replace(status.publishing, publishers=(PublisherFacts("site", None, None),))
    assert verdict(replace(status, publishing=never)) == [
        "publisher site: nothing published in site"
    ]


def test_serve_counts_only_when_configured() -> None:
    down = ServeFacts("http://127.0.0.1:1/", "Connection refused")
    assert verdict(replace(healthy(), serve=down)) == [
        "serve at http://127.0.0.1:1/ does not answer: Connection refused"
    ]
    assert verdict(replace(healthy(), serve=ServeFacts("http://x/"))) == []


def test_an_unmigrated_store_is_a_reason() -> None:
    status = replace(healthy(), completeness=None, store_problem="the store is not migrated")
    assert verdict(status) == ["the store is not migrated"]
    assert judge(status).as_json()["hosts"] == []


def test_one_dead_letter_is_one() -> None:
    waiting = replace(healthy().processor, dead_letters={"value": 1})
    assert verdict(replace(healthy(), processor=waiting)) == [
        "1 dead letter not redriven (value 1): see `chatchannels deadletters list`"
    ]
