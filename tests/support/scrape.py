"""Scraping a running part's Prometheus endpoint over real HTTP, for the metrics tests."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> tuple[set[str], Samples]:
    """The family names and the samples ((name, sorted labels) -> value) at `url`, parsed
    as the Prometheus text format."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    families = list(text_string_to_metric_families(text))
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples
    }
    return {f.name for f in families}, samples


def scrape_until(
    url: str, ready: Callable[[Samples], bool], what: str, timeout_s: float = 60.0
) -> tuple[set[str], Samples]:
    """Scrape until `ready` holds; on timeout fail with what was waited for and the last
    scrape (or why there was none)."""
    deadline = time.monotonic() + timeout_s
    last: object = "nothing scraped yet"
    while time.monotonic() < deadline:
        try:
            names, samples = scrape(url)
        except OSError as exc:  # not listening yet
            last = exc
        else:
            if ready(samples):
                return names, samples
            last = {k: v for k, v in samples.items() if k[0].startswith("chatchannels_")}
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what} at {url}: {last}")
