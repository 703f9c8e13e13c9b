"""seq_runs on real PostgreSQL: the one-statement merge ends where the pure merge ends, for
any batching, and the table stays one row per run."""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatchannels.processors.completeness import Run, merge_runs
from chatchannels.processors.pg.completeness import read_runs, record_runs
from chatchannels.processors.pg.migrate import migrate
from chatchannels.processors.pg.session import Session

pytestmark = pytest.mark.integration

SESSIONS = ("a" * 32, "b" * 32)


@pytest.fixture
def session(pg_dsn):
    migrate(pg_dsn)
    s = Session(psycopg.connect(pg_dsn, autocommit=True))
    yield s
    s.close()


points = st.lists(
    st.tuples(
        st.sampled_from(("alice-pc", "bob-pc")), st.sampled_from(SESSIONS), st.integers(1, 40)
    ),
    max_size=60,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(points, st.integers(1, 6), st.randoms(use_true_random=False))
def test_batches_merged_in_sql_give_the_pure_merge(session, found, batches, rnd) -> None:
    session.conn.execute("DELETE FROM seq_runs")
    runs = [Run(h, s, n, n, 1000.0 + n, 1000.0 + n, "skype-api") for h, s, n in found]
    rnd.shuffle(runs)
    size = max(1, len(runs) // batches)
    for start in range(0, len(runs), size):
        with session.transaction():
            record_runs(session, merge_runs(runs[start : start + size]))
    assert read_runs(session.conn) == merge_runs(runs)


def test_a_run_without_broker_times_and_one_filling_a_gap(session) -> None:
    s = SESSIONS[0]
    for batch in (
        [Run("h", s, 1, 3, None, None, "skype-api")],
        [Run("h", s, 7, 9, 70.0, 90.0, "skype-api")],
        [Run("h", s, 4, 6, 40.0, 60.0, "skype-api")],
    ):
        with session.transaction():
            record_runs(session, batch)
    assert read_runs(session.conn) == [Run("h", s, 1, 9, 40.0, 90.0, "skype-api")]
