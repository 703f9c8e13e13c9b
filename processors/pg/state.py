"""The processor's state in and out: host clocks, host messages and objects.

A batch loads the state its records name (and, for a host whose clock estimate moves, the
host messages that estimate still corrects) before folding them (batch.py), and writes what
the fold changed, queued, while its groups are recomputed. The state is kept as snapshots
(snapshots.py) next to the columns the store looks rows up by.
"""

from __future__ import annotations

from collections.abc import Mapping

from chatchannels.processors.batch import ClockEstimate, Folded, correction_epochs
from chatchannels.processors.clocks import HostClock
from chatchannels.processors.content import normalise_handle
from chatchannels.processors.observations import HostMessage, ObjectObservation
from chatchannels.processors.pg.session import Session
from chatchannels.processors.snapshots import dump_value, load_value

# -- state in -------------------------------------------------------------------------------


def load_clocks(session: Session, hosts: set[str]) -> dict[str, HostClock]:
    rows = session.query(
        "SELECT host, state FROM proc_host_clocks WHERE host = ANY(%s)", (sorted(hosts),)
    )
    return {host: load_value(HostClock, state) for host, state in rows}


def load_host_messages(
    session: Session, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], HostMessage]:
    rows = host_message_rows(session, "m.state", keys)
    return {(h, i): load_value(HostMessage, s) for h, i, s in rows}


def host_message_rows(session: Session, columns: str, keys: set[tuple[str, str]]) -> list[tuple]:
    """(host, local_id, *columns) of the stored host messages with these keys."""
    if not keys:
        return []
    hosts, ids = zip(*sorted(keys), strict=True)
    return session.query(
        f"SELECT m.host, m.local_id, {columns} FROM proc_host_messages m"
        " JOIN unnest(%b::text[], %b::text[]) AS k(host, local_id) USING (host, local_id)",
        (list(hosts), list(ids)),
    ).fetchall()


def load_refreshable(
    session: Session, hosts: set[str], clocks: Mapping[str, HostClock]
) -> dict[tuple[str, str], HostMessage]:
    """The hosts' messages with a correction in the host's current epoch or none."""
    ordered = sorted(hosts)
    steps = [clocks[h].steps if h in clocks else 0 for h in ordered]
    rows = session.query(
        "SELECT m.host, m.local_id, m.state FROM proc_host_messages m"
        " JOIN unnest(%s::text[], %s::int[]) AS c(host, steps) USING (host)"
        " WHERE m.epoch_min = -1 OR m.epoch_max >= c.steps",
        (ordered, steps),
    )
    return {(h, i): load_value(HostMessage, s) for h, i, s in rows}


def load_objects(
    session: Session, keys: set[tuple[str, str, str]]
) -> dict[tuple, ObjectObservation]:
    if not keys:
        return {}
    hosts, objs, ids = zip(*sorted(keys), strict=True)
    rows = session.query(
        "SELECT o.host, o.obj, o.obj_id, o.state FROM proc_objects o"
        " JOIN unnest(%s::text[], %s::text[], %s::text[]) AS k(host, obj, obj_id)"
        " USING (host, obj, obj_id)",
        (list(hosts), list(objs), list(ids)),
    )
    return {(h, o, i): load_value(ObjectObservation, s) for h, o, i, s in rows}


# -- state out ------------------------------------------------------------------------------


def write_clocks(session: Session, folded: Folded) -> None:
    if folded.clocks:
        session.upsert(
            "proc_host_clocks",
            ("host", "last_seq", "skew_s", "state"),
            [(c.host, c.last_seq, c.skew_s, dump_value(c)) for c in folded.clocks.values()],
            conflict=("host",),
            update=("last_seq", "skew_s", "state"),
        )
    if folded.estimates:
        # An imported file's offset can move again while it has no new event (another
        # file's ids moved it): the estimate after its event `seq` is the latest.
        rows = {(e.host, e.seq): _estimate_row(e) for e in folded.estimates}
        session.upsert(
            "host_clocks",
            ("host", "seq", "offset_s", "samples", "steps"),
            list(rows.values()),
            conflict=("host", "seq"),
            update=("offset_s", "samples", "steps"),
        )


_HOST_MESSAGE_COLUMNS = (
    "host",
    "local_id",
    "chat",
    "author_key",
    "first_partition",
    "first_offset",
    "epoch_min",
    "epoch_max",
    "state",
)


def write_host_messages(session: Session, folded: Folded) -> None:
    """The batch's host messages: those it saw first (`first_seen`: no row when the batch
    loaded them) COPYed straight in, the others upserted through a stage. Only the owner of
    a host's partition writes its host messages, so a first one can clash only with a
    dead-letter redrive running at the same moment: the unique key then fails the batch,
    which is retried (consumer.py), rather than one fold overwriting the other."""
    new, known = [], []
    for key, m in folded.host_messages.items():
        first = folded.first_seen.get(key)
        group = (m.chat, normalise_handle(m.author)) if m.is_complete else (None, None)
        (new if first else known).append(
            (
                m.host,
                m.local_id,
                *group,
                first.partition if first else -1,
                first.offset if first else -1,
                *correction_epochs(m),
                dump_value(m),
            )
        )
    session.upsert(
        "proc_host_messages",
        _HOST_MESSAGE_COLUMNS,
        known,
        conflict=("host", "local_id"),
        update=("chat", "author_key", "epoch_min", "epoch_max", "state"),
        fresh=new,
    )


def write_objects(session: Session, folded: Folded) -> None:
    session.upsert(
        "proc_objects",
        ("host", "obj", "obj_id", "seq", "state"),
        [(*key, o.seq, dump_value(o)) for key, o in folded.objects.items()],
        conflict=("host", "obj", "obj_id"),
        update=("seq", "state"),
    )


def _estimate_row(e: ClockEstimate) -> tuple:
    return (e.host, e.seq, e.skew_s, e.samples, e.steps)
