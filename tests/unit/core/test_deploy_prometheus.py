"""deploy/prometheus: the scrape example and the alert rules parse, and every metric the
rules use is one that a part's registry exposes (promtool is not at hand)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from chatchannels.processors.metrics import ProcessorMetrics
from chatchannels.publishers.metrics import PublisherMetrics, ServeMetrics

DEPLOY = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
}


def exposed(registry: CollectorRegistry) -> set[str]:
    return {
        family.name + suffix for family in registry.collect() for suffix in SUFFIXES[family.type]
    }


def every_metric() -> set[str]:
    return set().union(
        *(exposed(part().registry) for part in (ProcessorMetrics, PublisherMetrics, ServeMetrics))
    )


def test_the_alert_rules_use_only_metrics_that_exist():
    doc = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    assert {r["alert"] for r in rules} == {
        "ChatChannelsSequenceGap",
        "ChatChannelsLagGrowing",
        "ChatChannelsHostSilent",
    }
    known = every_metric()
    for rule in rules:
        used = set(re.findall(r"chatchannels_[a-z0-9_]+", rule["expr"]))
        assert used, rule["alert"]
        assert used <= known, (rule["alert"], used - known)
        assert rule["annotations"]["summary"]


def test_the_scrape_example_names_each_part_and_the_rules():
    doc = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert doc["rule_files"] == ["alerts.yml"]
    jobs = {job["job_name"]: job for job in doc["scrape_configs"]}
    assert set(jobs) == {
        "chatchannels-processor",
        "chatchannels-publisher",
        "chatchannels-serve",
    }
    for job in jobs.values():
        assert job["static_configs"][0]["targets"]
