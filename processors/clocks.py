"""Host clock offsets, estimated from each host's own events.

Evidence. Every raw event carries the agent's clock reading `a` (the host's clock, which is
also the clock Skype stamps TIMESTAMPs with) and every Kafka record the broker's append time
`b` (LogAppendTime: true time, after the capture). With `skew` the host clock's error and
`delay` >= 0 the capture-to-append delay, `a - b = skew - delay`. So every sample is a lower
bound of the skew, and the estimate is the upper envelope (max) of the samples, as NTP keeps
the sample of least delay. Live events are appended within a second, so the envelope is
tight as soon as one live event exists; events spooled through a Kafka outage only ever give
looser bounds, never wrong ones.

Window and steps. Only samples whose capture time (host clock) is within `window_s` before
the current one count. A clock corrected mid-day is followed: a jump forward shows at once
(the new samples are higher). A jump back makes new samples lower, which a delay would too;
it is taken as a step once the latest samples have all lain more than `STEP_S` below the
estimate for `STEP_CONFIRM_S` of broker time, advancing like live events: host clock and
broker clock advance alike from one to the next, which events drained from a spool after an
outage never do (captured far apart, appended together). Smaller steps back are followed
when the window has passed.

Order independence. The estimate after a host's n-th event is a function of that host's first
n events only, and one host's events always arrive in that host's order (Kafka key = host
id), so it is the same in every interleaving of hosts (design invariant 4).

Skype's TIMESTAMP of a live message against the agent's receive time is no evidence here:
both come from the same host clock, so the skew cancels. Cross-host residuals are reported
by matching for diagnosis but not fed back, which would make one host's times depend on when
another host's events arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

DEFAULT_WINDOW_S = 1800.0
STEP_S = 30.0
STEP_CONFIRM_S = 60.0
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

    `samples` holds only those still inside the window, in host order. `skew_s` is the
    host clock minus true time (positive: the host is fast); 0 until any evidence exists.
    """

    host: str
    last_seq: int = 0
    skew_s: float = 0.0
    samples: tuple[ClockSample, ...] = ()
    window_s: float = DEFAULT_WINDOW_S

    @property
    def has_evidence(self) -> bool:
        return bool(self.samples)

    def to_utc(self, host_seconds: float) -> float:
        return host_seconds - self.skew_s


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
        return replace(clock, last_seq=seq)
    sample = ClockSample(seq, agent_utc, broker_utc)
    horizon = agent_utc - clock.window_s
    kept = tuple(s for s in clock.samples if horizon <= s.agent_utc <= agent_utc)
    samples = (*kept, sample)
    low = 0
    while low < len(samples) and samples[-1 - low].bound < clock.skew_s - STEP_S:
        low += 1
    if low and clock.has_evidence and _live_run(samples[-low:]):
        samples = samples[-low:]
    return replace(
        clock, last_seq=seq, samples=samples, skew_s=round(max(s.bound for s in samples), 6)
    )


def _live_run(run: tuple[ClockSample, ...]) -> bool:
    """Samples spanning STEP_CONFIRM_S of broker time, each appended as live as the last."""
    if run[-1].broker_utc - run[0].broker_utc < STEP_CONFIRM_S:
        return False
    return all(
        abs((b.agent_utc - a.agent_utc) - (b.broker_utc - a.broker_utc)) <= _LIVE_JITTER_S
        for a, b in pairwise(run)
    )
