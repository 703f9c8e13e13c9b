"""chatchannels/logs.py: one JSON line shape for every part, or text."""

from __future__ import annotations

import io
import json
import logging

import pytest

from chatchannels.logs import JsonFormatter, setup_logging
from chatchannels.settings import SettingsError


def test_json_lines_have_the_same_fields_and_carry_extras():
    record = logging.LogRecord("agent", logging.WARNING, "f", 1, "started %s", ("x",), None)
    record.created = 1_700_000_000.5
    record.session = "abc"
    record.attempt = 3
    doc = json.loads(JsonFormatter().format(record))
    assert doc == {
        "time": "2023-11-14T22:13:20.500Z",
        "level": "warning",
        "logger": "agent",
        "message": "started x",
        "session": "abc",
        "attempt": 3,
    }


def test_setup_logging_writes_the_chosen_format_and_refuses_others():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        out = io.StringIO()
        setup_logging("json", stream=out)
        logging.getLogger("chatchannels.test").info("batch", extra={"records": 5})
        doc = json.loads(out.getvalue())
        assert (doc["message"], doc["records"], doc["level"]) == ("batch", 5, "info")
        text = io.StringIO()
        setup_logging("text", stream=text)
        logging.getLogger("chatchannels.test").info("batch")
        assert text.getvalue().rstrip().endswith("INFO chatchannels.test batch")
        with pytest.raises(SettingsError, match="log_format"):
            setup_logging("xml")
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
