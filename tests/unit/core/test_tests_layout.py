"""The tests are grouped by the part they test, and share helpers only through tests/support/:
a test module imported by another would run its tests twice and tie the two together."""

from __future__ import annotations

import ast

from tests.support.paths import REPO

TESTS = REPO / "tests"
PARTS = {
    "agent",
    "bench",
    "core",
    "demo",
    "desktop_api",
    "emulator",
    "importers",
    "pipeline",
    "processors",
    "publishers",
    "replay",
    "stack",
}


def _python_files():
    return [p for p in TESTS.rglob("*.py") if "data" not in p.relative_to(TESTS).parts]


def test_every_test_module_sits_in_its_part():
    misplaced = []
    for path in _python_files():
        if not path.name.startswith("test_"):
            continue
        parts = path.relative_to(TESTS).parts
        if len(parts) != 3 or parts[0] not in ("unit", "integration") or parts[1] not in PARTS:
            misplaced.append(str(path.relative_to(REPO)))
    assert misplaced == [], f"test modules outside tests/<unit|integration>/<part>/: {misplaced}"


def _imported_modules(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_no_module_imports_a_test_module_or_the_conftest():
    offenders = []
    for path in _python_files():
        for name in _imported_modules(ast.parse(path.read_text(), str(path))):
            last = name.rsplit(".", 1)[-1]
            if name.startswith("tests.") and (last.startswith("test_") or last == "conftest"):
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert offenders == []


def test_support_modules_hold_nothing_pytest_would_collect():
    # A contract's tests may live in a support class (search_contract.py): they run once, in
    # the test module's subclass.
    with_tests = [
        f"{path.relative_to(REPO)}: {node.name}"
        for path in (TESTS / "support").glob("*.py")
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
        and node.name.startswith(("test_", "Test"))
    ]
    assert with_tests == []
