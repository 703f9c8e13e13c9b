"""`agent status`.

The running agent rewrites a small JSON status file every second; `agent status` combines
it with what the spool itself says, so it works whether the agent runs or not. Both carry
`metrics`: the agent's counters under the names a Prometheus metric of them would have, the
way the processor and the publishers name theirs (the agent itself serves no HTTP).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from chatchannels.ingest.agent.config import AgentConfig
from chatchannels.ingest.agent.spool import SpoolSummary, read_summary

# A status file older than this means the agent is not running (it rewrites it every second).
_STALE_S = 10.0


def agent_metrics(live: dict[str, Any], summary: SpoolSummary | None) -> dict[str, float]:
    """The agent's counters from its status document (`live`, as the runner writes it) and
    the spool's summary (left out when unknown). Counters count this session's events."""
    found: dict[str, float] = {
        "chatchannels_agent_events_captured_total": live.get("captured", 0),
        "chatchannels_agent_events_delivered_total": live.get("acked", 0),
        "chatchannels_agent_events_in_flight": live.get("in_flight", 0),
        "chatchannels_agent_kafka_connected": int(bool(live.get("kafka_connected"))),
    }
    if live.get("last_ack_at") is not None:
        found["chatchannels_agent_last_delivery_timestamp_seconds"] = live["last_ack_at"]
    if summary is not None:
        found["chatchannels_agent_spool_depth_events"] = summary.depth
        found["chatchannels_agent_spool_dead_letters"] = summary.dead
        found["chatchannels_agent_next_seq"] = summary.next_seq
        if summary.oldest_captured_at is not None:
            found["chatchannels_agent_spool_oldest_unsent_timestamp_seconds"] = (
                summary.oldest_captured_at
            )
    return found


def read_status(config: AgentConfig, now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    summary = read_summary(config.spool)
    try:
        live = json.loads(config.status_file.read_text())
    except (OSError, ValueError):
        live = {}
    running = bool(live) and now - live.get("updated_at", 0) < _STALE_S and _alive(live)
    return {
        "host": config.host_id,
        "spool": str(config.spool),
        "running": running,
        "attach_state": live.get("attach_state", "unknown") if running else "not running",
        "session": live.get("session"),
        "spool_depth": summary.depth,
        "next_seq": summary.next_seq,
        "dead_letters": summary.dead,
        "oldest_unsent_seq": summary.oldest_seq,
        "oldest_unsent_age_s": (
            round(now - summary.oldest_captured_at, 1) if summary.oldest_captured_at else None
        ),
        "last_kafka_ack_at": live.get("last_ack_at"),
        "kafka_connected": live.get("kafka_connected", False) if running else False,
        "events_per_s": live.get("events_per_s", 0.0) if running else 0.0,
        "captured_this_session": live.get("captured", 0),
        "last_error": live.get("last_error", ""),
        "metrics": agent_metrics(live if running else {}, summary),
        "capture_paused": live.get("capture_paused", "") if running else "",
    }


def _alive(live: dict[str, Any]) -> bool:
    try:
        os.kill(int(live.get("pid", 0)), 0)
    except (ProcessLookupError, ValueError, OverflowError):
        return False
    except PermissionError:
        return True
    return int(live.get("pid", 0)) > 0


def render_status(report: dict[str, Any]) -> str:
    def when(ts: float | None) -> str:
        if ts is None:
            return "never"
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))

    oldest = (
        "none"
        if report["oldest_unsent_seq"] is None
        else f"seq {report['oldest_unsent_seq']}, {report['oldest_unsent_age_s']} s old"
    )
    rows = [
        ("host", report["host"]),
        ("agent", "running" if report["running"] else "not running"),
        ("attach state", report["attach_state"]),
        ("spool depth", f"{report['spool_depth']} events ({report['spool']})"),
        ("oldest unsent", oldest),
        ("last Kafka ack", when(report["last_kafka_ack_at"])),
        ("events per second", f"{report['events_per_s']:g}"),
        ("dead letters", str(report["dead_letters"])),
    ]
    if report["capture_paused"]:
        rows.append(("capture", f"paused: {report['capture_paused']}"))
    if report["last_error"]:
        rows.append(("last error", report["last_error"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in rows)
