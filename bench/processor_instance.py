"""One processor instance in a consumer group, as bench/instances.py runs it: a script that
imports nothing but `chatchannels` and the standard library, so that it runs the processor
of whichever tree PYTHONPATH puts first (this one's, or a baseline commit's import tree).

Run as `python -P processor_instance.py ...` (-P: the bench/ folder is not on the path).
It prints one JSON line once it is connected (its PostgreSQL backend, where the processor
came from) and joins the consumer group, but holds the partitions it is given paused until a
line arrives on stdin: the bench says go once every instance holds partitions, so that none
works through the others' share while they join (with no rebalance delay, the first to join
gets every partition until its next poll after a batch). On SIGTERM it stops between
batches and prints one JSON line of what it did.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import signal
import sys
import threading

from kafka import KafkaConsumer
from kafka.consumer.subscription_state import ConsumerRebalanceListener

import chatchannels.processors
from chatchannels.settings import load_settings


def locate(leaf: str, attr: str) -> object:
    """`attr` of the module named `leaf` anywhere under chatchannels.processors: commits
    differ in where the processor's modules live (processors/store.py, processors/pg/...).
    Walked on the package's own path, never by trying names: a name missing from the tree
    would be found in the installed (current) tree by its editable finder."""
    package = chatchannels.processors
    for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if info.name.rsplit(".", 1)[-1] == leaf:
            module = importlib.import_module(info.name)
            if hasattr(module, attr):
                return getattr(module, attr)
    raise SystemExit(f"no module {leaf!r} with {attr!r} under {package.__path__}")


def gate(consumer: KafkaConsumer, go: threading.Event) -> None:
    """Partitions assigned before `go` stay paused until then. Through the consumer's own
    API (subscribe's listener, poll), which the processor uses in every commit."""
    subscribe, poll = consumer.subscribe, consumer.poll

    class Gated(ConsumerRebalanceListener):
        def __init__(self, listener: ConsumerRebalanceListener) -> None:
            self.listener = listener

        def on_partitions_revoked(self, revoked) -> None:
            self.listener.on_partitions_revoked(revoked)

        def on_partitions_assigned(self, assigned) -> None:
            self.listener.on_partitions_assigned(assigned)
            if not go.is_set():
                consumer.pause(*assigned)

    def gated_subscribe(topics, listener: ConsumerRebalanceListener, **kwargs) -> None:
        subscribe(topics, listener=Gated(listener), **kwargs)

    def gated_poll(*args, **kwargs):
        if go.is_set() and consumer.paused():
            consumer.resume(*consumer.paused())
        return poll(*args, **kwargs)

    consumer.subscribe, consumer.poll = gated_subscribe, gated_poll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--topic", "--group", "--schema", "--kafka", "--dsn"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--migrate", action="store_true", help="migrate the schema first")
    args = parser.parse_args()
    processor_class = locate("consumer", "Processor")
    options_class = locate("consumer", "ProcessOptions")
    if args.migrate:
        locate("migrate", "migrate")(args.dsn, args.schema)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    settings = load_settings(kafka=args.kafka, dsn=args.dsn, topic=args.topic)
    options = options_class(
        topic=args.topic,
        group=args.group,
        schema=args.schema,
        batch_records=args.batch,
        create_time_is_append_time=True,
    )
    processor = processor_class(settings, options, stop)
    try:
        ready = {
            "backend": processor.store.conn.info.backend_pid,
            "processor": sys.modules[processor_class.__module__].__file__,
        }
        print(json.dumps(ready), flush=True)
        go = threading.Event()
        gate(processor.consumer, go)
        threading.Thread(target=lambda: sys.stdin.readline() and go.set(), daemon=True).start()
        summary = processor.run()
        store = processor.store
        done = {
            "records": summary.records,
            "batches": summary.batches,
            "conflicts": summary.conflicts,
            "timings": dict(store.timings),
            # Older commits count nothing.
            "counts": dict(getattr(store, "counts", {})),
        }
        print(json.dumps(done), flush=True)
    finally:
        processor.close()


if __name__ == "__main__":
    main()
