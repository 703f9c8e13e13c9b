"""How every benchmark reports: one JSON line per figure on stdout, then a readable table.

A figure measured against a ceiling (the fastest the underlying part can go on this machine,
measured in the same run) carries the ceiling and the ratio, so a number is never read alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    ceiling: float | None = None

    @property
    def ratio(self) -> float | None:
        if self.ceiling in (None, 0):
            return None
        return self.value / self.ceiling

    def as_json(self) -> str:
        return json.dumps(
            {
                "name": self.name,
                "value": round(self.value, 3),
                "unit": self.unit,
                "ceiling": None if self.ceiling is None else round(self.ceiling, 3),
                "ratio": None if self.ratio is None else round(self.ratio, 3),
            }
        )


def report(title: str, figures: Iterable[Figure]) -> None:
    figures = list(figures)
    for figure in figures:
        print(figure.as_json(), flush=True)
    table = Table(title=title)
    for column in ("figure", "value", "unit", "ceiling", "ratio"):
        table.add_column(column, justify="left" if column in ("figure", "unit") else "right")
    for f in figures:
        table.add_row(
            f.name,
            _readable(f.value),
            f.unit,
            "" if f.ceiling is None else f"{f.ceiling:,.1f}",
            "" if f.ratio is None else f"{f.ratio:.2f}",
        )
    Console(file=sys.stderr).print(table)


def _readable(value: float) -> str:
    # Latencies of a fraction of a second would all read 0.0 with one decimal.
    return f"{value:.3g}" if abs(value) < 10 else f"{value:,.1f}"


def bench_main(
    doc: str,
    run: Callable[..., object],
    quick: str,
    size: str | None = None,
    arguments: Mapping[str, Mapping[str, Any]] | None = None,
) -> None:
    """One benchmark's command line: `--quick` (help `quick`), with `size` `--<size> N`, and
    `arguments` (flag: add_argument's keywords), each passed to `run` by name; brings the
    stack up first, like `make bench`."""
    from chatchannels.settings import load_settings
    from chatchannels.stack.manager import stack_up

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick)
    if size is not None:
        parser.add_argument(f"--{size}", type=int, help=f"any other number of {size}")
    for flag, keywords in (arguments or {}).items():
        parser.add_argument(flag, **keywords)
    options = vars(parser.parse_args())
    settings = load_settings()
    stack_up(settings)
    run(settings, **options)
