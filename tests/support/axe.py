"""axe-core (installed from the npm registry by `make setup`) run in a page of real
Chromium: the accessibility violations of what the server served."""

from __future__ import annotations

import json

from tests.support.cdp import Tab
from tests.support.paths import REPO

AXE = REPO / ".venv" / "node" / "node_modules" / "axe-core" / "axe.min.js"
# The impacts that fail a test; minor and moderate ones are reported only.
BLOCKING = ("serious", "critical")


def axe_violations(tab: Tab) -> list[dict]:
    """axe's violations in the tab's page (its CSP bypassed: the page runs no script)."""
    assert AXE.is_file(), f"{AXE} is missing: run `make setup` (it installs axe-core from npm)"
    tab.evaluate(AXE.read_text())
    found = tab.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => JSON.stringify("
        "r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ': '"
        " + n.any.concat(n.all, n.none).map(c => c.message).join(' '))}))))",
        await_promise=True,
    )
    return json.loads(found)
