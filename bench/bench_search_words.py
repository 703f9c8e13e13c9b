"""What indexing the words inside URLs and identifiers costs: index size, build rate and
search latency on N generated messages, for this checkout and, with --before, another one.

`python bench/bench_search_words.py [-n N] [--before OTHER_PYTHON]`: N messages (200,000 by
default) as bench_publishers makes them, with a URL in one message of 7, an identifier in
one of 11 and a ticket key in one of 13, written straight into a Whoosh index (no store) in
batches as `publish` writes them, merged as when idle, then searched. With `--before`, the
same script also runs under OTHER_PYTHON (a virtualenv of another checkout, whose
`chatchannels` it then measures): both indexes are built one after the other, then their
latencies are measured in alternating rounds, so that a machine whose load varies weighs
on both sides alike. Prints one JSON object per side, then a table.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chatchannels.publishers import paths
from chatchannels.publishers.search_index import SearchDocument, WhooshBackend

# After `chatchannels` is imported: run by another checkout's python, this repository's
# folders must not stand in for that checkout's package.
sys.path.append(str(Path(__file__).resolve().parents[1]))
from bench.bench_publishers import (
    BATCH,
    QUERIES,
    cpu_seconds,
    percentile,
    seed_rows,
)

DEFAULT_N = 200_000
IDENTIFIERS = ["parseConfig", "HTTPServer.start()", "user_id", "max_retry_count", "v2.api"]
PASTED_QUERIES = [
    "example",
    "example.com",
    "docs.example.com",
    "config",
    "parse_config",
    "PROJ-42",
    "retry count",
    '"example.com"',
]


def documents(n: int):
    for i, (id, chat, author, name, posted, body) in enumerate(seed_rows(n, random.Random(2006))):
        if i % 7 == 0:
            host = ("docs", "ci", "www")[i % 3]
            body += f" see https://{host}.example.com/{body.split()[0]}/{i}?id={i}"
        if i % 11 == 0:
            body += f" in {IDENTIFIERS[i % len(IDENTIFIERS)]}"
        if i % 13 == 0:
            body += f" fixes PROJ-{i % 500}"
        url = paths.message_link(chat, paths.month_of(posted), id)
        yield SearchDocument(id, chat, author, name, posted, body, url)


def build(n: int, where: Path) -> dict:
    docs = list(documents(n))
    backend = WhooshBackend(where)
    t0, cpu0 = time.perf_counter(), cpu_seconds()
    for start in range(0, n, BATCH):
        backend.write_batch(docs[start : start + BATCH], [], watermark=start + BATCH)
    build_s, build_cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    t0 = time.perf_counter()
    backend.maintain()
    merge_s = time.perf_counter() - t0
    backend.close()
    return {
        "code": str(Path(sys.modules["chatchannels"].__file__).parents[1]),
        "messages": n,
        "build_rate": n / build_s,
        "build_rate_per_cpu_s": n / build_cpu,
        "merge_s": merge_s,
        "index_mb": sum(f.stat().st_size for f in where.rglob("*") if f.is_file()) / 1e6,
    }


def query(where: Path, rounds: int) -> dict:
    """Each query's latencies (ms) and its number of matches."""
    backend = WhooshBackend(where, create=False)
    queries = [*QUERIES, *PASTED_QUERIES]
    totals = {q: backend.search(q, limit=20).total for q in queries}  # warm
    times: dict[str, list[float]] = {q: [] for q in queries}
    for _ in range(rounds):
        for text in queries:
            q0 = time.perf_counter()
            backend.search(text, limit=20)
            times[text].append((time.perf_counter() - q0) * 1000)
    backend.close()
    return {"times": times, "totals": totals}


def summary(built: dict, runs: list[dict]) -> dict:
    times = {q: [ms for run in runs for ms in run["times"][q]] for q in runs[0]["times"]}
    latencies = [ms for values in times.values() for ms in values]
    return {
        **built,
        "p50_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 0.95),
        "median_ms": {q: statistics.median(values) for q, values in times.items()},
        "totals": runs[0]["totals"],
    }


def side(python: str, *args: str) -> dict:
    run = subprocess.run([python, __file__, *args], capture_output=True, text=True, check=True)
    return json.loads(run.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=DEFAULT_N)
    parser.add_argument("--before", help="the python of another checkout to measure too")
    parser.add_argument("--rounds", type=int, default=4, help="alternating latency rounds")
    # One step, for the other side's process.
    parser.add_argument("--build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--query", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        print(json.dumps(build(args.n, args.build)))
        return
    if args.query:
        print(json.dumps(query(args.query, 5)))
        return
    pythons = {"after": sys.executable}
    if args.before:
        pythons = {"before": args.before, **pythons}
    work = Path(tempfile.mkdtemp(prefix="bench-search-words-"))
    try:
        built = {
            name: side(python, "-n", str(args.n), "--build", str(work / name))
            for name, python in pythons.items()
        }
        runs: dict[str, list[dict]] = {name: [] for name in pythons}
        for _ in range(args.rounds):
            for name, python in pythons.items():
                runs[name].append(side(python, "--query", str(work / name)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sides = {name: summary(built[name], runs[name]) for name in pythons}
    for result in sides.values():
        print(json.dumps(result))
    if len(sides) == 2:
        before, after = sides["before"], sides["after"]
        print(f"{'':28}{'before':>12}{'after':>12}", file=sys.stderr)
        for key in (
            "build_rate",
            "build_rate_per_cpu_s",
            "merge_s",
            "index_mb",
            "p50_ms",
            "p95_ms",
        ):
            print(f"{key:28}{before[key]:12.1f}{after[key]:12.1f}", file=sys.stderr)
        for text in after["median_ms"]:
            print(
                f"{text[:28]:28}{before['median_ms'][text]:12.2f}{after['median_ms'][text]:12.2f}"
                f"   hits {before['totals'][text]} -> {after['totals'][text]}",
                file=sys.stderr,
            )


if __name__ == "__main__":
    main()
