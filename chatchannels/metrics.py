"""The HTTP endpoint the processor and the publisher expose their Prometheus metrics on.

Each part keeps its metrics in a CollectorRegistry of its own (processors/metrics.py,
publishers/metrics.py), never in prometheus_client's global one: two parts in one process
(tests, the demo) stay apart, and nothing is registered at import time. A server install
only: the agent, which has no prometheus_client, writes its counters into its status file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, start_http_server


class MetricsEndpointError(OSError):
    """The metrics port cannot be bound; the message names the address."""


@contextmanager
def metrics_endpoint(registry: CollectorRegistry, port: int, host: str) -> Iterator[int | None]:
    """Serve `registry` on http://host:port/metrics (any path answers) in a daemon thread
    while the block runs; yields the bound port, or None when `port` is 0 (metrics off)."""
    if not port:
        yield None
        return
    try:
        server, thread = start_http_server(port, host, registry)
    except OSError as exc:
        raise MetricsEndpointError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
        ) from exc
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
