"""The agent's spool: durable FIFO, gap-free per-host seq, high-water marks, crash safety."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from chatchannels.ingest.agent.spool import Spool, SpoolError, read_summary


def _builders(*bodies: str):
    return [lambda seq, b=b: f"{seq}:{b}".encode() for b in bodies]


def test_append_allocates_consecutive_seqs_and_keeps_order(tmp_path):
    with Spool(tmp_path / "s.db", "alice-pc") as spool:
        assert spool.append(_builders("a", "b"), 10.0) == range(1, 3)
        assert spool.append(_builders("c"), 11.0) == range(3, 4)
        got = spool.peek(0, 10)
    assert [(e.seq, e.data) for e in got] == [(1, b"1:a"), (2, b"2:b"), (3, b"3:c")]
    assert got[0].captured_at == 10.0


def test_seq_and_marks_survive_reopening(tmp_path):
    path = tmp_path / "s.db"
    with Spool(path, "alice-pc") as spool:
        spool.append(_builders("a", "b"), 1.0, marks={"#a/$b;1": 17, "#c/$d;2": 5})
        spool.append(_builders("c"), 1.0, marks={"#a/$b;1": 12})
        spool.remove([1, 2, 3])
    with Spool(path, "alice-pc") as spool:
        assert spool.next_seq == 4
        # A mark only rises: a later, lower id (an overlap re-read) never lowers it.
        assert spool.marks() == {"#a/$b;1": 17, "#c/$d;2": 5}
        assert spool.append(_builders("d"), 1.0) == range(4, 5)


def test_remove_and_peek_after(tmp_path):
    with Spool(tmp_path / "s.db", "h") as spool:
        spool.append(_builders(*"abcde"), 1.0)
        spool.remove([1, 2, 9])
        assert [e.seq for e in spool.peek(3, 10)] == [4, 5]
        assert spool.depth() == 3
        assert spool.oldest().seq == 3
    summary = read_summary(tmp_path / "s.db")
    assert (summary.depth, summary.next_seq, summary.oldest_seq) == (3, 6, 3)


def test_failed_builder_stores_nothing_and_uses_no_seq(tmp_path):
    def broken(seq: int) -> bytes:
        raise ValueError("bad event")

    with Spool(tmp_path / "s.db", "h") as spool:
        spool.append(_builders("a"), 1.0)
        with pytest.raises(ValueError):
            spool.append([*_builders("b"), broken], 1.0, marks={"c": 9})
        assert spool.depth() == 1
        assert spool.marks() == {}
        assert spool.append(_builders("c"), 1.0) == range(2, 3)


def test_spool_of_another_host_is_refused(tmp_path):
    Spool(tmp_path / "s.db", "alice-pc").close()
    with pytest.raises(SpoolError, match="belongs to host 'alice-pc'"):
        Spool(tmp_path / "s.db", "bob-pc")


def test_garbage_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "s.db"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(SpoolError, match=r"s\.db"):
        Spool(path, "h")
    with pytest.raises(SpoolError, match="no spool"):
        read_summary(tmp_path / "absent.db")


_WRITER = textwrap.dedent(
    """
    import sys
    from chatchannels.ingest.agent.spool import Spool
    spool = Spool(sys.argv[1], "crash-host")
    n = 0
    while True:
        seqs = spool.append(
            [lambda s: b"x" * 2000 + str(s).encode()] * 50, 1.0, marks={"chat": n}
        )
        n += 1
        print(seqs.stop - 1, n - 1, flush=True)
    """
)


@pytest.mark.parametrize("after_commits", [1, 7, 40])
def test_sigkill_mid_write_loses_no_committed_event_and_leaves_no_gap(tmp_path, after_commits):
    path = tmp_path / "crash.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    confirmed = []
    try:
        while len(confirmed) < after_commits:
            line = child.stdout.readline()
            assert line, f"writer exited early with {child.poll()}; confirmed {confirmed[-1:]}"
            confirmed.append(tuple(map(int, line.split())))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    last_seq, last_mark = confirmed[-1]
    with Spool(path, "crash-host") as spool:
        stored = [e.seq for e in spool.peek(0, 10**9)]
        # Everything the writer was told is durable is there; the batch in flight at the
        # kill is there entirely or not at all, and the counter continues right after it.
        assert stored[:last_seq] == list(range(1, last_seq + 1))
        assert stored == list(range(1, len(stored) + 1))
        assert len(stored) % 50 == 0
        assert spool.next_seq == len(stored) + 1
        assert spool.marks()["chat"] in (last_mark, last_mark + 1)
        assert spool.marks()["chat"] == len(stored) // 50 - 1


def test_spools_opened_at_once_on_a_new_file_all_open(tmp_path):
    # The agent's writer and its delivery thread open a new spool at the same moment;
    # switching a new file to WAL can then fail at once with "database is locked".
    for round_ in range(100):
        path = tmp_path / f"spool-{round_}.db"
        start = threading.Barrier(8)
        failures: list[BaseException] = []

        def open_close(path=path, start=start, failures=failures) -> None:
            start.wait()
            try:
                Spool(path, "alice-pc").close()
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=open_close) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not failures, failures
