"""Delivery from the spool to a real Kafka: acks=all, key = host, spool emptied only on ack."""

from __future__ import annotations

import pytest

from chatchannels.ingest.agent.delivery import Delivery
from chatchannels.ingest.agent.spool import Spool
from chatchannels.rawevents import EventClock, encode_raw_event, skype_api_event
from chatchannels.signing_secrets import agent_signer
from tests.support.agent_runs import TopicReader, agent_login, seqs, wait_for

pytestmark = pytest.mark.integration
HOST = "delivery-host"
SESSION = "ab" * 16


def _builder(n: int):
    def build(seq: int) -> bytes:
        return encode_raw_event(
            skype_api_event(
                host=HOST,
                session=SESSION,
                seq=seq,
                clock=EventClock(1700000000.0 + n, 0),
                reason="backfill",
                obj="CHATMESSAGE",
                obj_id=str(n),
                trigger=None,
                lines=[f"CHATMESSAGE {n} BODY message {n}"],
            )
        )

    return build


def _delivery(settings, path, max_in_flight: int) -> Delivery:
    """The agent's delivery, logged in as the host's own principal (`hosts add`)."""
    login = agent_login(settings, HOST, path.parent)
    return Delivery(
        path,
        HOST,
        settings.kafka_bootstrap,
        settings.topic,
        max_in_flight=max_in_flight,
        producer_options=login.client_options(),
        signer=agent_signer(login.user, login.password_file),
    )


def _fill(spool: Spool, start: int, count: int) -> None:
    for first in range(start, start + count, 100):
        spool.append([_builder(n) for n in range(first, min(first + 100, start + count))], 1.0)


def test_spooled_events_reach_kafka_in_order_and_leave_the_spool(tmp_path, stack, kafka_topic):
    path = tmp_path / "spool.db"
    with Spool(path, HOST) as spool:
        _fill(spool, 1, 1500)
    delivery = _delivery(stack.replace(topic=kafka_topic), path, max_in_flight=300)
    reader = TopicReader(stack, kafka_topic)
    delivery.start()
    try:
        with Spool(path, HOST) as spool:
            _fill(spool, 1501, 500)
            delivery.wake()
            wait_for(
                "2000 events", lambda: len(reader.poll()) >= 2000, lambda: len(reader.events), 60
            )
            wait_for("an empty spool", lambda: spool.depth() == 0, spool.depth, 30)
    finally:
        delivery.stop()
        reader.close()
    assert seqs(reader.events) == list(range(1, 2001))
    assert set(reader.keys) == {HOST.encode()}
    assert len(reader.partitions) == 1
    assert delivery.stats().acked == 2000
    assert delivery.crashed is None


def test_kafka_down_capture_goes_on_and_nothing_is_lost(tmp_path, private_kafka):
    topic = private_kafka.create_topic("agent.delivery.down")
    path = tmp_path / "spool.db"
    delivery = _delivery(private_kafka.settings.replace(topic=topic), path, max_in_flight=200)
    reader = TopicReader(private_kafka.settings, topic)
    delivery.start()
    try:
        with Spool(path, HOST) as spool:
            _fill(spool, 1, 300)
            delivery.wake()
            wait_for("first 300", lambda: len(reader.poll()) >= 300, lambda: len(reader.events), 60)
            private_kafka.stop()
            # Capture continues into the spool while Kafka is away; the window stays bounded.
            _fill(spool, 301, 2000)
            delivery.wake()
            wait_for(
                "delivery to notice Kafka is gone",
                lambda: delivery.stats().in_flight <= 200 and spool.depth() > 1500,
                lambda: (delivery.stats(), spool.depth()),
                30,
            )
            private_kafka.start()
            wait_for(
                "all 2300 after Kafka returned",
                lambda: len({e["seq"] for e in reader.poll()}) >= 2300,
                lambda: (len(reader.events), delivery.stats()),
                120,
            )
            wait_for("an empty spool", lambda: spool.depth() == 0, spool.depth, 30)
    finally:
        delivery.stop()
        reader.close()
    got = seqs(reader.events)
    assert sorted(set(got)) == list(range(1, 2301))
    # Order per host holds; a resend after a producer reset may repeat a stretch verbatim.
    first_seen = list(dict.fromkeys(got))
    assert first_seen == sorted(first_seen)
