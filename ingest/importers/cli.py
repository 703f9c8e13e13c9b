"""`chatchannels import PATH...`: a thin skin over detect.py and job.py."""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from chatchannels.event_signing import IMPORTER
from chatchannels.ingest.importers.detect import Importable, Refusal, detect
from chatchannels.ingest.importers.job import FileReport, Target, import_file
from chatchannels.kafka_auth import login
from chatchannels.options import json_option, kafka_option, quiet_option, topic_option
from chatchannels.signing_secrets import importer_signer

# Imported files' hosts begin with `file-`: the importer may write no other host's events
# (chatchannels/event_signing.py, may_write).
_HOST = r"^file-[A-Za-z0-9._:@-]{1,195}$"


class _ObjectsColumn(ProgressColumn):
    """Objects and objects/s, whatever the bar counts (rows, or bytes of an export)."""

    def render(self, task: Task) -> Text:
        objects = task.fields.get("objects", 0)
        elapsed = task.elapsed or 0.0
        rate = objects / elapsed if elapsed > 0 else 0.0
        return Text(f"{objects:,} objects  {rate:,.0f}/s", style="progress.data.speed")


class _RichProgress:
    def __init__(self, console: Console, quiet: bool) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            _ObjectsColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=quiet or not console.is_terminal,
        )
        self._task = None

    def begin(self, name: str, total: int | None, unit: str) -> None:
        self._progress.start()
        self._task = self._progress.add_task(name, total=total, objects=0)

    def update(self, objects: int, completed: int) -> None:
        self._progress.update(self._task, completed=completed, objects=objects)

    def end(self) -> None:
        self._progress.stop()


def _human(report: FileReport) -> str:
    head = f"{report.path}: {report.description}, host {report.host}"
    if report.already_imported:
        body = f"already imported ({report.skipped:,} objects); nothing added"
    else:
        body = f"{report.objects:,} objects, {report.spooled:,} events spooled"
        if report.skipped:
            body += f", {report.skipped:,} skipped (spooled by an earlier run)"
    lines = [f"{head}: {body}"]
    lines += [f"  error at {e.place}: {e.problem}" for e in report.errors]
    if report.pending:
        lines.append(
            f"  {report.pending:,} events are not in Kafka yet (is it reachable?); they stay "
            f"in {report.spool}: run the same import again to deliver them"
        )
    return "\n".join(lines)


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--host", "host", help="Host id for the events (default: file-<sha256[:16]>).")
@kafka_option
@topic_option
@json_option
@quiet_option
@click.option(
    "--wait",
    "wait_s",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds to wait for Kafka to take the spooled events before giving up for now.",
)
@click.pass_obj
def import_(
    settings, paths: tuple[Path, ...], host: str | None, as_json: bool, quiet: bool, wait_s: float
):
    """Import Skype history files: an export .tar, a messages.json, a main.db, or a profile
    folder. Each file's records go to Kafka as raw events; a killed import resumes."""
    import re

    if host is not None and not re.match(_HOST, host):
        raise click.BadParameter(
            "file- and 1-195 of A-Z a-z 0-9 . _ : @ - (the importer may write no other"
            " host's events)",
            param_hint="--host",
        )
    found: list[Importable | Refusal] = [item for path in paths for item in detect(path)]
    refusals = [f for f in found if isinstance(f, Refusal)]
    for refusal in refusals:
        click.echo(str(refusal), err=True)
    target = Target(
        spool_dir=settings.import_spools,
        media_root=settings.media_root,
        bootstrap=settings.kafka_bootstrap,
        topic=settings.topic,
        signer=importer_signer(settings),
        wait_s=wait_s,
        kafka_options=login(settings, IMPORTER).client_options(),
    )
    session = uuid.uuid4().hex
    progress = _RichProgress(Console(stderr=True), quiet)
    reports = []
    for item in found:
        if isinstance(item, Importable):
            report = import_file(item, target, session=session, host=host, progress=progress)
            reports.append(report)
            if not as_json:
                click.echo(_human(report))
    if as_json:
        summary = {
            "session": session,
            "files": [r.as_json() for r in reports],
            "refused": [{"path": str(r.path), "reason": r.reason} for r in refusals],
        }
        click.echo(json.dumps(summary, sort_keys=True))
    if any(r.pending for r in reports):
        sys.exit(3)
    if refusals:
        sys.exit(2)
