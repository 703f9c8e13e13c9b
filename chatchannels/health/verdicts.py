"""The facts `status` gathers, and the reasons they give for calling the pipeline unhealthy.

Pure: the probes (probes.py) fill these values in; nothing here reads a clock, a socket or a
file. A fact that could not be read is None with a `problem` saying why, and an unreadable
part is a reason of its own, so a sick pipeline is never reported healthy for lack of data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from chatchannels.processors.completeness import Completeness, last_heard, session_spans


@dataclass(frozen=True)
class Service:
    """Kafka or PostgreSQL: answering (`problem` None) or not, and its version."""

    name: str
    address: str
    problem: str | None
    version: str | None = None


@dataclass(frozen=True)
class ProcessorFacts:
    consumer: str
    topic: str
    # Records in the topic not yet applied, per partition; None when the topic's end
    # offsets or the store's could not be read.
    lag: dict[int, int] | None
    last_batch_utc: float | None
    dead_letters: dict[str, int]  # not yet redriven, by kind
    problem: str | None = None


@dataclass(frozen=True)
class PublisherFacts:
    """One publisher's output: its watermark (None: never published) and when it moved."""

    name: str
    watermark: int | None
    updated_utc: float | None
    problem: str | None = None


@dataclass(frozen=True)
class PublishingFacts:
    site_dir: str
    newest_change_seq: int | None
    publishers: tuple[PublisherFacts, ...]
    last_page_utc: float | None
    index_bytes: int | None


@dataclass(frozen=True)
class ServeFacts:
    url: str | None  # None: not configured, so not checked
    problem: str | None = None


@dataclass(frozen=True)
class Thresholds:
    silent_after_s: float
    stalled_after_s: float


@dataclass(frozen=True)
class Status:
    checked_utc: float
    thresholds: Thresholds
    services: tuple[Service, ...]
    completeness: Completeness | None
    store_problem: str | None
    processor: ProcessorFacts
    publishing: PublishingFacts
    serve: ServeFacts
    reasons: tuple[str, ...] = field(default=())

    @property
    def healthy(self) -> bool:
        return not self.reasons

    def as_json(self) -> dict:
        """Stable keys for `status --json` (README.md, "Completeness and status")."""
        p = self.processor
        return {
            "healthy": self.healthy,
            "reasons": list(self.reasons),
            "checked_utc": self.checked_utc,
            "silent_after_s": self.thresholds.silent_after_s,
            "stalled_after_s": self.thresholds.stalled_after_s,
            "services": {s.name: asdict(s) for s in self.services},
            "store_problem": self.store_problem,
            "hosts": hosts_json(self.completeness),
            "processor": {
                "consumer": p.consumer,
                "topic": p.topic,
                "lag": None if p.lag is None else {str(k): v for k, v in sorted(p.lag.items())},
                "lag_total": None if p.lag is None else sum(p.lag.values()),
                "last_batch_utc": p.last_batch_utc,
                "dead_letters": dict(sorted(p.dead_letters.items())),
                "problem": p.problem,
            },
            "publishers": {
                "site_dir": self.publishing.site_dir,
                "newest_change_seq": self.publishing.newest_change_seq,
                "last_page_utc": self.publishing.last_page_utc,
                "index_bytes": self.publishing.index_bytes,
                **{
                    f.name: {
                        "watermark": f.watermark,
                        "behind": behind(f, self.publishing.newest_change_seq),
                        "updated_utc": f.updated_utc,
                        "problem": f.problem,
                    }
                    for f in self.publishing.publishers
                },
            },
            "serve": asdict(self.serve),
        }


def hosts_json(found: Completeness | None) -> list[dict]:
    """Per host: its last event, its sequence gaps, and its spool backlog, which agents do
    not send with their events (`chatchannels agent status` on the host shows it)."""
    if found is None:
        return []
    heard = last_heard(found.runs)
    silent = {s.host for s in found.silent}
    hosts: dict[str, dict] = {}
    for span in session_spans(found.runs):
        host = hosts.setdefault(
            span.host,
            {
                "host": span.host,
                "source": span.source,
                "last_heard_utc": heard[span.host],
                "silent": span.host in silent,
                "last_seq": span.last_seq,
                "last_session": span.session,
                "spool_backlog": None,
                "gaps": [str(g) for g in found.gaps if g.host == span.host],
            },
        )
        if span.last_seq >= host["last_seq"]:
            host["last_seq"], host["last_session"] = span.last_seq, span.session
    return list(hosts.values())


def behind(publisher: PublisherFacts, newest: int | None) -> int | None:
    if publisher.watermark is None or newest is None:
        return None
    return max(0, newest - publisher.watermark)


def judge(status: Status) -> Status:
    """`status` with its reasons: every one a line an operator can act on."""
    return replace(status, reasons=tuple(reasons(status)))


def reasons(status: Status) -> list[str]:
    found: list[str] = []
    now, limits = status.checked_utc, status.thresholds
    for service in status.services:
        if service.problem is not None:
            found.append(f"{service.name} at {service.address} does not answer: {service.problem}")
    if status.store_problem is not None:
        found.append(status.store_problem)
    if status.completeness is not None:
        found.extend(f"sequence gap: {gap}" for gap in status.completeness.gaps)
        found.extend(
            f"host {s.host} silent for {s.silent_s:.0f} s (more than {limits.silent_after_s:g} s)"
            for s in status.completeness.silent
        )
    found.extend(_processor_reasons(status.processor, now, limits))
    found.extend(_publishing_reasons(status.publishing, now, limits))
    if status.serve.url is not None and status.serve.problem is not None:
        found.append(f"serve at {status.serve.url} does not answer: {status.serve.problem}")
    return found


def _processor_reasons(p: ProcessorFacts, now: float, limits: Thresholds) -> list[str]:
    found = []
    if p.problem is not None:
        found.append(f"processor {p.consumer}: {p.problem}")
    if p.lag is not None and sum(p.lag.values()) > 0:
        idle = _age(now, p.last_batch_utc)
        if idle is None or idle > limits.stalled_after_s:
            last = "no batch recorded" if idle is None else f"last batch {idle:.0f} s ago"
            found.append(
                f"processor {p.consumer} stalled: {sum(p.lag.values())} records of {p.topic}"
                f" not applied, {last}"
            )
    if p.dead_letters:
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(p.dead_letters.items()))
        n = sum(p.dead_letters.values())
        found.append(
            f"{n} dead letter{'s' if n != 1 else ''} not redriven ({kinds}):"
            " see `chatchannels deadletters list`"
        )
    return found


def _publishing_reasons(facts: PublishingFacts, now: float, limits: Thresholds) -> list[str]:
    found = []
    for publisher in facts.publishers:
        if publisher.problem is not None:
            found.append(f"publisher {publisher.name}: {publisher.problem}")
            continue
        if publisher.watermark is None:
            found.append(f"publisher {publisher.name}: nothing published in {facts.site_dir}")
            continue
        late = behind(publisher, facts.newest_change_seq)
        idle = _age(now, publisher.updated_utc)
        if late and (idle is None or idle > limits.stalled_after_s):
            found.append(
                f"publisher {publisher.name} stalled: {late} changes behind the store,"
                f" last moved {'never' if idle is None else f'{idle:.0f} s ago'}"
            )
    return found


def _age(now: float, then: float | None) -> float | None:
    return None if then is None else now - then
