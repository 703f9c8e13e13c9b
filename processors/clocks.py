"""Host clock offsets, estimated from each host's own events.

Evidence. Every raw event carries the agent's clock reading `a` (the host's clock, which is
also the clock Skype stamps TIMESTAMPs with) and every Kafka record the broker's append time
`b` (LogAppendTime: true time, after the capture). With `skew` the host clock's error and
`delay` >= 0 the capture-to-append delay, `a - b = skew - delay`. So every sample is a lower
bound of the skew, and the estimate is the upper envelope (max) of the samples, as NTP keeps
the sample of least delay. Live events are appended within a second, so the envelope is
tight as soon as one live event exists; events spooled through a Kafka outage (a laptop that
wakes up off the network and backfills) only ever give looser bounds, never wrong ones, so
old evidence is kept however old it is: it ages out only through a step.

Steps. A clock corrected mid-day is followed. A jump forward shows at once (the new samples
are higher). Once the envelope is `tight` (two consecutive samples have advanced like live
events), a sample more than `STEP_S` above it can only be a jump forward, no delay being
negative, and it is taken as a step; before that, the rise may be the first live event of
a host whose evidence so far was spooled, and it refreshes the epoch instead. A jump back
makes new samples lower, which delays do too; it is taken as a step when the host's clock
is seen running backwards by more than `STEP_S` (events are in capture order, give or take
concurrent reads), or once the latest samples have all lain more than `STEP_S` below the
estimate for `STEP_CONFIRM_S` of broker time while advancing like live events: host clock
and broker clock advancing alike from one to the next, which events drained from a spool
never do (captured apart, appended together). Slow drift back is followed only at a step.

Epochs and refresh. The skew is assumed constant between steps: `steps` numbers the epochs.
The correction in force, `skew_s`, follows the envelope only when it rises by `REFRESH_S`
or more (a second: Skype's TIMESTAMP resolution), or at a step. Every message of an epoch is
corrected with that epoch's `skew_s`: when it changes, the epoch's messages folded so far
are re-corrected (`is_stale`, observations.refresh_clock). So a host whose first evidence
was spooled (it started off the network) gets its messages right with its first live
event, and the correction of a message is a function of its host's events alone, however
the events are batched, as long as the refresh runs before the batch is committed.
Messages of an earlier epoch keep their correction: a step applies from where it was seen.

Order independence. The estimate after a host's n-th event is a function of that host's first
n events only, and one host's events always arrive in that host's order (Kafka key = host
id), so it is the same in every interleaving of hosts (design invariant 4); so is every
refresh, which depends on the same prefix and the host's own messages.

Skype's TIMESTAMP of a live message against the agent's receive time is no evidence here:
both come from the same host clock, so the skew cancels. Cross-host residuals (each copy's
corrected time against its canonical message's) are not fed back, which would make one
host's times depend on when another host's events arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatchannels.processors.frozen import evolve

STEP_S = 30.0
STEP_CONFIRM_S = 60.0
REFRESH_S = 1.0
# How much more one clock may advance than the other between two live events (delay jitter).
_LIVE_JITTER_S = 2.0


@dataclass(frozen=True)
class ClockSample:
    """One event's clocks: `agent_utc` by the host's clock, `broker_utc` by the broker's."""

    seq: int
    agent_utc: float
    broker_utc: float

    @property
    def bound(self) -> float:
        return self.agent_utc - self.broker_utc


@dataclass(frozen=True)
class HostClock:
    """A host's clock estimate after its events up to `last_seq`; persist it, reload it.

    `skew_s` is the correction in force: host clock minus true time (positive: the host is
    fast), 0 until any evidence exists, within `REFRESH_S` below `best.bound`, the envelope
    of the `samples` since the last step. `run_*` describe the current run of low samples
    (candidates for a step back): its first sample, its best, its length. State stays a
    handful of samples however many events.
    """

    host: str
    last_seq: int = 0
    skew_s: float = 0.0
    samples: int = 0
    steps: int = 0
    best: ClockSample | None = None
    last: ClockSample | None = None
    run_first: ClockSample | None = None
    run_best: ClockSample | None = None
    run_samples: int = 0
    # Whether the envelope came from live events (two consecutive samples advanced alike,
    # the clocks moving by more than the jitter): then it lies within a delay of the skew.
    tight: bool = False
    # An imported file's clock (file_clocks.py): its events' clocks are no evidence of the
    # file's; `skew_s` is the file's offset, decided by its shared ids (`samples` of them)
    # with earlier files, and it is always "known" (0 until shared ids say otherwise), so
    # its messages are corrected in epoch 0 whatever the order they arrive in.
    imported: bool = False

    @property
    def has_evidence(self) -> bool:
        return self.best is not None or self.imported

    @property
    def epoch(self) -> int | None:
        """The epoch a correction made now belongs to; None while there is no evidence."""
        return self.steps if self.has_evidence else None

    def is_stale(self, skew_s: float, epoch: int | None) -> bool:
        """Whether a correction made with (skew_s, epoch) should be redone with this estimate."""
        if epoch is None:
            return self.has_evidence
        return epoch == self.steps and skew_s != self.skew_s


def observe_clock(
    clock: HostClock, seq: int, agent_utc: float, broker_utc: float | None
) -> HostClock:
    """The estimate after one more event of this host; idempotent for a re-delivered seq.

    Without a broker time (events not read from Kafka) the event advances the host's
    position but adds no evidence.
    """
    if seq <= clock.last_seq:
        return clock
    if broker_utc is None:
        return evolve(clock, last_seq=seq)
    sample = ClockSample(seq, agent_utc, broker_utc)
    if clock.best is None or clock.last is None or agent_utc < clock.last.agent_utc - STEP_S:
        return _restart(clock, sample, stepped=clock.best is not None)
    samples = clock.samples + 1
    if clock.tight and sample.bound >= clock.best.bound + STEP_S:
        # Issue 17: folding a jump forward into the epoch re-corrected every message the host
        # had read before it by the size of the jump (an hour's correction moved them all an
        # hour, splitting each from the other hosts' copies). A tight envelope is within a
        # delay of the skew, so this sample can only come from a stepped clock: a new epoch,
        # and what was read before keeps its correction.
        return _restart(clock, sample, stepped=True)
    tight = clock.tight or _live_pair(clock.last, sample)
    if sample.bound >= clock.best.bound:
        return evolve(
            clock,
            samples=samples,
            last_seq=seq,
            skew_s=_round(sample.bound)
            if sample.bound >= clock.skew_s + REFRESH_S
            else clock.skew_s,
            best=sample,
            last=sample,
            run_first=None,
            run_best=None,
            run_samples=0,
            tight=tight,
        )
    if sample.bound >= clock.best.bound - STEP_S:
        return evolve(
            clock,
            samples=samples,
            last_seq=seq,
            last=sample,
            run_first=None,
            run_best=None,
            run_samples=0,
            tight=tight,
        )
    first, run_best, run_samples = clock.run_first, clock.run_best, clock.run_samples
    if first is None or run_best is None or not _advanced_alike(clock.last, sample):
        first, run_best, run_samples = sample, sample, 0
    elif sample.bound > run_best.bound:
        run_best = sample
    if sample.broker_utc - first.broker_utc >= STEP_CONFIRM_S:
        return _restart(clock, run_best, stepped=True, last=sample, samples=clock.run_samples + 1)
    return evolve(
        clock,
        samples=samples,
        last_seq=seq,
        last=sample,
        run_first=first,
        run_best=run_best,
        run_samples=run_samples + 1,
    )


def _restart(
    clock: HostClock,
    best: ClockSample,
    *,
    stepped: bool,
    last: ClockSample | None = None,
    samples: int = 1,
) -> HostClock:
    last = last or best
    return evolve(
        clock,
        last_seq=last.seq,
        skew_s=_round(best.bound),
        samples=samples,
        steps=clock.steps + stepped,
        best=best,
        last=last,
        run_first=None,
        run_best=None,
        run_samples=0,
        # Tightness is earned again in each epoch, from its own live events.
        tight=False,
    )


def _live_pair(previous: ClockSample, sample: ClockSample) -> bool:
    # Events drained from a spool are appended together: their broker clock barely moves.
    return sample.broker_utc - previous.broker_utc > _LIVE_JITTER_S and _advanced_alike(
        previous, sample
    )


def _advanced_alike(previous: ClockSample, sample: ClockSample) -> bool:
    host_advance = sample.agent_utc - previous.agent_utc
    broker_advance = sample.broker_utc - previous.broker_utc
    return abs(host_advance - broker_advance) <= _LIVE_JITTER_S


def _round(seconds: float) -> float:
    # Microseconds are the precision of clock.utc; rounding keeps stored values exact.
    return round(seconds, 6)
