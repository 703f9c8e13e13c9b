"""HostMessages made from short generated conversations, for the matching's property tests."""

from __future__ import annotations

from hypothesis import strategies as st

from chatchannels.processors.observations import BodySighting, HostMessage

TOL_US = 120_000_000
T0 = 1_700_000_000


def host_message(host: str, n: int, at: int, body: str, edited: int | None) -> HostMessage:
    sighting = BodySighting(body, 0 if edited is None else at + edited, None, n, 0.0, 0)
    return HostMessage(
        host=host,
        local_id=str(n),
        last_seq=n,
        chat="#c",
        author="Alice",
        type="SAID",
        timestamp=T0 + at,
        skew_s=0.0,
        epoch=0,
        sightings=(sighting,),
    )


# Posts: (seconds after T0, body, which of three hosts read it, edit delay or None). Bodies
# from a small set so that equal texts repeat within and across segments.
POSTS = st.lists(
    st.tuples(
        st.integers(0, 2_000),
        st.sampled_from(["ok", "hi", "lunch?", "ok!"]),
        st.sets(st.sampled_from("abc"), min_size=1),
        st.none() | st.integers(1, 300),
    ),
    min_size=1,
    max_size=25,
)


def host_messages(posts) -> list[HostMessage]:
    out = []
    for n, (at, body, hosts, edited) in enumerate(posts):
        for host in sorted(hosts):
            # Host c reads edited messages only after the edit: an orphan in phase 2.
            orphan = edited is not None and host == "c"
            shown = body + " (edited)" if orphan else body
            out.append(
                host_message(host, n + 1, at + ord(host) % 3, shown, edited if orphan else None)
            )
    return out
