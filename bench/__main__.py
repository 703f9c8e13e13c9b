"""`python -m bench` (or `make bench`): bring the stack up and run every benchmark."""

from __future__ import annotations

import importlib
import pkgutil

import bench
from bench import ceilings, children
from bench.report import report
from chatchannels.settings import load_settings
from chatchannels.stack.manager import stack_up


def main() -> None:
    children.sigterm_unwinds()
    settings = load_settings()
    stack_up(settings)
    report(
        "ceilings of this machine",
        ceilings.kafka_produce_consume(settings) + ceilings.postgres_copy_upsert(settings),
    )
    # Every other bench module with a `run(settings)` adds its own figures.
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if info.name.startswith("bench_"):
            module = importlib.import_module(f"bench.{info.name}")
            if hasattr(module, "run"):
                module.run(settings)


if __name__ == "__main__":
    main()
