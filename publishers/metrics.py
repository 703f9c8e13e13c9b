"""Prometheus metrics of the publishers (`publish`) and of `serve`, each part in a registry
of its own (chatchannels/metrics.py says why)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

BATCH_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
SEARCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class PublisherMetrics:
    """Per publisher (site, search): batches, changes, time per batch, and where it stands
    in the change stream."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.batches = Counter(
            "chatchannels_publisher_batches",
            "Batches of changes applied.",
            ["publisher"],
            registry=r,
        )
        self.changes = Counter(
            "chatchannels_publisher_changes", "Changes applied.", ["publisher"], registry=r
        )
        self.batch_seconds = Histogram(
            "chatchannels_publisher_batch_duration_seconds",
            "Time to apply one batch of changes.",
            ["publisher"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.catch_up_seconds = Histogram(
            "chatchannels_publisher_catch_up_duration_seconds",
            "Time from reading the first new change to the output written (the site renders"
            " its pages here): the publish latency.",
            ["publisher"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.watermark = Gauge(
            "chatchannels_publisher_watermark_change_seq",
            "The last change_seq the publisher applied.",
            ["publisher"],
            registry=r,
        )
        self.lag = Gauge(
            "chatchannels_publisher_lag_changes",
            "Changes in the store after the publisher's watermark.",
            ["publisher"],
            registry=r,
        )
        self.caught_up = Gauge(
            "chatchannels_publisher_last_caught_up_timestamp_seconds",
            "When the publisher last had applied every change there was.",
            ["publisher"],
            registry=r,
        )

    def batch_applied(self, publisher: str, changes: int, seconds: float) -> None:
        self.batches.labels(publisher).inc()
        self.changes.labels(publisher).inc(changes)
        self.batch_seconds.labels(publisher).observe(seconds)

    def position(self, publisher: str, watermark: int, newest: int) -> None:
        self.watermark.labels(publisher).set(watermark)
        self.lag.labels(publisher).set(max(newest - watermark, 0))

    def caught_up_with(self, publisher: str, seconds: float | None) -> None:
        """Caught up; `seconds` since the first change of the round, None if there was none."""
        if seconds is not None:
            self.catch_up_seconds.labels(publisher).observe(seconds)
        self.caught_up.labels(publisher).set(time.time())


# What `serve` answers, as the label of its request counter: a few fixed values, never the
# path itself (every page of the archive would become a time series).
ROUTES = ("search", "search_json", "media", "metrics", "static")


class ServeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "chatchannels_serve_requests",
            "HTTP requests answered, by route and status code.",
            ["route", "code"],
            registry=r,
        )
        self.search_seconds = Histogram(
            "chatchannels_serve_search_duration_seconds",
            "Time to answer a search (index lookup and rendering).",
            ["format"],
            buckets=SEARCH_BUCKETS,
            registry=r,
        )

    def answered(self, route: str, code: int) -> None:
        self.requests.labels(route, str(code)).inc()
