"""processors/ is layered (processors/__init__.py): the pure core, then the PostgreSQL
adapters (pg/) and the Kafka loop, then the replay; and no stage imports a later one (the
publishers). Checked on every module's imports as written, those inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.paths import REPO

ROOT = REPO / "processors"
PACKAGE = "chatchannels.processors"

# Values in, values out: no driver, no broker, no adapter.
PURE_CORE = {
    "batch",
    "canonical",
    "chatnames",
    "clocks",
    "completeness",
    "content",
    "decode",
    "decode_export",
    "decode_maindb",
    "engine",
    "file_clocks",
    "frozen",
    "group_index",
    "matching",
    "observations",
    "richtext",
    "rows",
    "snapshots",
}
# The Kafka loop, its metrics and the commands, beside the core.
LOOP_AND_CLI = {"__init__", "consumer", "cli", "metrics"}

PUBLISHERS = "chatchannels.publishers"
PG = f"{PACKAGE}.pg"
REPLAY = f"{PACKAGE}.replay"
FORBIDDEN = {
    "core": ("psycopg", "kafka", PUBLISHERS, PG, REPLAY, f"{PACKAGE}.consumer", f"{PACKAGE}.cli"),
    "pg": ("kafka", PUBLISHERS, REPLAY, f"{PACKAGE}.consumer", f"{PACKAGE}.cli"),
    "replay": (PUBLISHERS,),
    "loop": (PUBLISHERS, REPLAY),
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([PACKAGE, *parts])


def imported(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module `source` (the module `module`) imports, relative imports resolved; for
    `from X import y` both X and X.y (y may be a submodule)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            found.add(origin)
            found.update(f"{origin}.{alias.name}" for alias in node.names)
    return found


def violations(layer: str, names: set[str]) -> list[str]:
    return sorted(
        name
        for name in names
        for bad in FORBIDDEN[layer]
        if name == bad or name.startswith(f"{bad}.")
    )


def layer_of(path: Path) -> str:
    relative = path.relative_to(ROOT)
    if relative.parts[0] == "pg":
        return "pg"
    if relative.parts[0] == "replay":
        return "replay"
    if relative.stem in PURE_CORE:
        return "core"
    if relative.stem in LOOP_AND_CLI:
        return "loop"
    raise AssertionError(
        f"processors/{relative} belongs to no layer: add it to PURE_CORE or LOOP_AND_CLI"
        " (tests/unit/processors/test_layers.py), or move it into pg/ or replay/"
    )


MODULES = sorted(ROOT.rglob("*.py"))


def test_every_layer_has_its_modules() -> None:
    layers = {layer_of(path) for path in MODULES}
    assert layers == {"core", "pg", "replay", "loop"}
    assert {p.stem for p in MODULES if p.parent == ROOT} >= PURE_CORE


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_imports_nothing_of_a_later_layer(path: Path) -> None:
    names = imported(path.read_text(), module_name(path), path.name == "__init__.py")
    assert violations(layer_of(path), names) == []


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("core", "import psycopg"),
        ("core", "def f():\n    from kafka import KafkaConsumer"),
        ("core", "from chatchannels.processors.pg.store import Store"),
        ("core", "from chatchannels.processors import pg"),
        ("core", "from .replay import rebuild"),
        ("pg", "from chatchannels.publishers.site import STATE_FILE"),
        ("pg", "import kafka.errors"),
        ("pg", "from ..replay.site import SiteSwap"),
        ("replay", "from chatchannels.publishers import publishing"),
        ("loop", "from chatchannels import publishers"),
    ],
)
def test_the_check_sees_a_forbidden_import(layer: str, source: str) -> None:
    module = {"core": "batch", "pg": "pg.store", "replay": "replay.site", "loop": "consumer"}
    names = imported(source, f"{PACKAGE}.{module[layer]}")
    assert violations(layer, names), (layer, source, names)
