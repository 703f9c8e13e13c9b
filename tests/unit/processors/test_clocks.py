"""Host clock offsets: upper envelope of (agent clock - broker append time), per host prefix."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chatchannels.processors.clocks import REFRESH_S, HostClock, observe_clock

T = 1_700_000_000.0


def feed(clock: HostClock, samples: list[tuple[float, float]]) -> HostClock:
    """samples: (true capture time, delay); the host clock is `skew` ahead."""
    for true_time, delay in samples:
        clock = observe_clock(clock, clock.last_seq + 1, true_time + SKEW, true_time + delay)
    return clock


SKEW = 42.0


def test_no_evidence_means_zero() -> None:
    clock = observe_clock(HostClock("h"), 1, T, None)
    assert (clock.skew_s, clock.has_evidence, clock.last_seq) == (0.0, False, 1)


def test_envelope_takes_the_least_delayed_sample() -> None:
    clock = feed(HostClock("h"), [(T, 3.0), (T + 1, 0.25), (T + 2, 9.0)])
    assert clock.skew_s == SKEW - 0.25


def test_spooled_events_never_lower_the_estimate() -> None:
    live = feed(HostClock("h"), [(T, 0.1)])
    after_outage = feed(live, [(T + 60 + k, 3600.0 - k) for k in range(50)])
    assert after_outage.skew_s == SKEW - 0.1


def test_redelivered_seq_changes_nothing() -> None:
    clock = feed(HostClock("h"), [(T, 0.5)])
    assert observe_clock(clock, 1, T + SKEW + 100, T) == clock


def test_clock_jump_forward_shows_at_once() -> None:
    clock = feed(HostClock("h"), [(T, 0.1)])
    clock = observe_clock(clock, 2, T + 10 + SKEW + 300, T + 10.1)
    assert clock.skew_s == SKEW + 300 - 0.1


def test_old_evidence_outlives_an_offline_night_and_a_spooled_backfill() -> None:
    clock = feed(HostClock("h"), [(T, 0.1)])
    # Next morning, off the network: the backfill is spooled for two hours.
    clock = feed(clock, [(T + 36000 + k, 7200.0 - k) for k in range(20)])
    assert (clock.skew_s, clock.steps) == (SKEW - 0.1, 0)


def test_correction_moves_only_by_a_second_or_more() -> None:
    clock = feed(HostClock("h"), [(T, 0.9), (T + 1, 0.5)])
    assert (clock.skew_s, clock.best.bound) == (SKEW - 0.9, SKEW - 0.5)
    assert clock.is_stale(SKEW - 0.9, 0) is False
    clock = feed(clock, [(T + 2, 2.5), (T + 3, 5.0), (T + 4, 1.0)])
    assert clock.skew_s == SKEW - 0.9
    clock = observe_clock(clock, 6, T + 5 + SKEW + 1.0, T + 5.0)
    assert clock.skew_s == SKEW + 1.0
    assert clock.is_stale(SKEW - 0.9, 0) and not clock.is_stale(SKEW - 0.9, 1)


def test_steady_lag_below_the_step_size_keeps_the_envelope() -> None:
    clock = feed(HostClock("h"), [(T, 0.1)] + [(T + k * 60, 20.0) for k in range(1, 20)])
    assert clock.skew_s == SKEW - 0.1


@given(st.lists(st.tuples(st.floats(0, 1e5), st.floats(0, 1e4)), min_size=1, max_size=30))
def test_estimate_is_bounded_by_true_skew_and_latest_sample(samples) -> None:
    samples.sort()
    clock = feed(HostClock("h"), samples)
    assert SKEW - samples[-1][1] - REFRESH_S - 1e-6 <= clock.skew_s <= SKEW + 1e-6


def test_clock_step_back_is_taken_once_live_samples_confirm_it() -> None:
    clock = feed(HostClock("h"), [(T, 0.1)])
    # Set back by 40 s; live events every 5 minutes: the second one confirms the step.
    for k in range(1, 4):
        true_time = T + k * 300
        clock = observe_clock(clock, clock.last_seq + 1, true_time + SKEW - 40, true_time + 0.1)
        assert clock.skew_s == (41.9 if k < 2 else 1.9)


def test_host_clock_running_backwards_drops_later_samples_at_once() -> None:
    clock = feed(HostClock("h"), [(T, 0.1), (T + 20, 0.1)])
    # Events are in capture order, so a capture time well before the last one proves a step.
    clock = observe_clock(clock, 3, T + 40 + SKEW - 60, T + 40.1)
    assert clock.skew_s == -18.1


def test_slow_spool_drain_is_not_a_clock_step() -> None:
    clock = feed(HostClock("h"), [(T, 0.1)])
    # Captured a minute apart during an outage, drained two seconds apart after it.
    drained = [(T + 60 * k, 3000.0 - 58 * k) for k in range(1, 30)]
    assert feed(clock, drained).skew_s == SKEW - 0.1
