"""Log lines for every command: text for a terminal, or JSON lines for a log shipper.

One formatter, so a line from the agent, the processor or the publisher has the same fields:
`time` (UTC, ISO 8601 with milliseconds), `level` (lower case), `logger`, `message`, then the
record's `extra` fields as they were given, and `exc` with the traceback when there is one.
The `log_format` setting picks text or json; the agent always writes JSON.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import IO, Any

from chatchannels.settings import SettingsError

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Attributes every LogRecord has: whatever else a record carries came in `extra`.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per line (module doc)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in doc:
                doc[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise SettingsError(f"setting 'log_format': {log_format!r} is not one of {', '.join(FORMATS)}")


def setup_logging(log_format: str, debug: bool = False, stream: IO[str] | None = None) -> None:
    """The root logger writes to stderr (or `stream`) in `log_format`; DEBUG with `debug`,
    else INFO. Replaces the root's handlers, so calling it again changes the format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    # kafka-python logs every connection at INFO and every failed attempt at ERROR; that
    # drowns our own output, and the parts report an unreachable Kafka themselves.
    logging.getLogger("kafka").setLevel(logging.NOTSET if debug else logging.CRITICAL)
