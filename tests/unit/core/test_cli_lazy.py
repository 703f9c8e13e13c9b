"""The desktop's commands load no server library, errors and shared flags included."""

from __future__ import annotations

import subprocess
import sys

SERVER_MODULES = ("psycopg", "whoosh", "jinja2", "feedgen")

PROBE = """
import sys
from click.testing import CliRunner
from chatchannels.cli import main
for args in (["agent", "status", "--help"], ["import", "--help"], ["agent", "run", "--config",
             "/nonexistent/agent.toml"]):
    CliRunner().invoke(main, args)
print(" ".join(m for m in {modules!r} if m in sys.modules))
"""


def test_agent_and_import_commands_import_no_server_library():
    probe = PROBE.format(modules=SERVER_MODULES)
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "", f"loaded: {result.stdout}"
