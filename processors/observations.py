"""What one host saw: observations decoded from raw events, folded per (host, local id).

A `MessageObservation` is one raw event's worth of CHATMESSAGE properties (any of them may be
missing: a status notification carries only STATUS). Every observation about one
(host, local message id) folds into one `HostMessage`, which keeps the body history as that
host saw it. Folding is idempotent: a re-delivered event (seq not above the last one folded)
changes nothing, because one host's events always arrive in that host's order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chatchannels.processors.clocks import HostClock
from chatchannels.processors.frozen import evolve


@dataclass(frozen=True)
class MessageObservation:
    """CHATMESSAGE properties read in one raw event; None means "not read in this event"."""

    host: str
    seq: int
    local_id: str
    reason: str
    captured_utc: float
    tz_offset_s: int
    chat: str | None = None
    author: str | None = None
    author_name: str | None = None
    type: str | None = None
    status: str | None = None
    timestamp: int | None = None
    body: str | None = None
    edited_timestamp: int | None = None
    edited_by: str | None = None
    users: tuple[str, ...] | None = None
    # How `body` is written: "text" (the Desktop API's BODY: every character is itself) or
    # "skype-xml" (main.db body_xml, the export's content: Skype's markup with entities).
    body_format: str = "text"
    # An identifier the copies of this message in other files share (main.db:
    # chat, author, remote_id and type), None where the source has none (the Desktop API).
    xid: str | None = None


@dataclass(frozen=True)
class ObjectObservation:
    """Properties of a non-message object (CHAT, USER, CHATMEMBER, SESSION), as read: each
    (name, value, captured_utc by the host's clock). Skype notifies one property at a time,
    so a host's reads of one object merge (`merge_object`) rather than replace each other,
    and each property keeps the time it was read: which host read it last is decided per
    property."""

    host: str
    seq: int
    obj: str
    obj_id: str
    reason: str
    captured_utc: float
    properties: tuple[tuple[str, str, float], ...]


def merge_object(stored: ObjectObservation | None, new: ObjectObservation) -> ObjectObservation:
    """One host's reads of an object so far, after `new`. Idempotent, like folding messages:
    a re-delivered event (seq not above the stored one) changes nothing."""
    if stored is None:
        return new
    if new.seq <= stored.seq:
        return stored
    merged = {name: (value, at) for name, value, at in stored.properties}
    merged.update((name, (value, at)) for name, value, at in new.properties)
    return evolve(new, properties=tuple((n, v, t) for n, (v, t) in sorted(merged.items())))


Observation = MessageObservation | ObjectObservation


@dataclass(frozen=True)
class BodySighting:
    """One body a host read, with the edit evidence read alongside it.

    `edited_timestamp` is Skype's raw value in the host's clock: 0 means never edited, so
    this body is the original; None means EDITED_TIMESTAMP was not read, so nobody knows.
    `skew_s` is the host clock estimate of clock epoch `epoch` used to correct the edit time.
    `body_format` is how `body` is written, as MessageObservation.body_format; snapshots made
    before bodies had formats hold Desktop API bodies, hence the default.
    """

    body: str
    edited_timestamp: int | None
    edited_by: str | None
    seq: int
    skew_s: float
    epoch: int | None = None
    body_format: str = "text"

    @property
    def is_original(self) -> bool:
        return self.edited_timestamp == 0

    @property
    def edited_utc(self) -> float | None:
        if not self.edited_timestamp:
            return None
        return self.edited_timestamp - self.skew_s


@dataclass(frozen=True)
class HostMessage:
    """One message as one host knows it, folded from all its observations in host order.

    `skew_s` is the host's clock estimate when it first read TIMESTAMP, redone when that
    clock epoch's estimate improves (`refresh_clock`): it depends only on this host's own
    prefix of events, so it is the same in every interleaving of hosts.
    """

    host: str
    local_id: str
    last_seq: int
    chat: str | None = None
    author: str | None = None
    author_name: str | None = None
    type: str | None = None
    status: str | None = None
    timestamp: int | None = None
    skew_s: float | None = None
    epoch: int | None = None
    tz_offset_s: int | None = None
    users: tuple[str, ...] = ()
    sightings: tuple[BodySighting, ...] = ()
    # The id copies of this message in other files share (MessageObservation.xid).
    xid: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.host, self.local_id)

    @property
    def is_complete(self) -> bool:
        """Enough is known to place it: chat, author and posting time."""
        return self.chat is not None and self.author is not None and self.timestamp is not None

    @property
    def corrected_utc(self) -> float | None:
        if self.timestamp is None or self.skew_s is None:
            return None
        return self.timestamp - self.skew_s

    @property
    def original(self) -> BodySighting | None:
        """The body read with EDITED_TIMESTAMP 0, the only proof of an original."""
        return next((s for s in self.sightings if s.is_original), None)

    @property
    def original_body(self) -> str | None:
        original = self.original
        return original.body if original else None

    @property
    def current(self) -> BodySighting | None:
        return self.sightings[-1] if self.sightings else None

    @property
    def local_order(self) -> tuple[int, int | str]:
        """Sort key among one host's messages: ids only grow on a host (spec §6.1)."""
        return (0, int(self.local_id)) if self.local_id.isdigit() else (1, self.local_id)


def fold_observation(
    message: HostMessage | None, obs: MessageObservation, clock: HostClock
) -> HostMessage:
    """Fold one observation into the host's message; `clock` is its host's estimate now."""
    if message is None:
        message = HostMessage(host=obs.host, local_id=obs.local_id, last_seq=0)
    elif obs.host != message.host or obs.local_id != message.local_id:
        raise ValueError(f"observation {obs.host}/{obs.local_id} folded into {message.key}")
    if obs.seq <= message.last_seq:
        return message
    sightings = message.sightings
    if obs.body is not None:
        sighting = BodySighting(
            obs.body,
            obs.edited_timestamp,
            obs.edited_by,
            obs.seq,
            clock.skew_s,
            clock.epoch,
            obs.body_format,
        )
        if not sightings or not _same_sighting(sightings[-1], sighting):
            sightings = (*sightings, sighting)
    timestamp, tz = message.timestamp, message.tz_offset_s
    skew, epoch = message.skew_s, message.epoch
    if timestamp is None and obs.timestamp is not None:
        timestamp, tz = obs.timestamp, obs.tz_offset_s
        skew, epoch = clock.skew_s, clock.epoch
    return evolve(
        message,
        last_seq=obs.seq,
        chat=message.chat if message.chat is not None else obs.chat,
        author=message.author if message.author is not None else obs.author,
        author_name=obs.author_name if obs.author_name is not None else message.author_name,
        type=message.type if message.type is not None else obs.type,
        status=obs.status if obs.status is not None else message.status,
        timestamp=timestamp,
        skew_s=skew,
        epoch=epoch,
        tz_offset_s=tz,
        users=obs.users if obs.users is not None else message.users,
        sightings=sightings,
        xid=message.xid if message.xid is not None else obs.xid,
    )


def _same_sighting(a: BodySighting, b: BodySighting) -> bool:
    # A re-read of an unchanged message is not a new body; EDITED_TIMESTAMP not read (None)
    # on one of the two reads adds no evidence either.
    if (a.body, a.body_format) != (b.body, b.body_format) or (
        a.edited_by != b.edited_by and b.edited_by is not None
    ):
        return False
    return a.edited_timestamp == b.edited_timestamp or b.edited_timestamp is None


def refresh_clock(message: HostMessage, clock: HostClock) -> HostMessage:
    """The message re-corrected with its host's improved estimate (itself if none applies)."""
    sightings = tuple(
        evolve(s, skew_s=clock.skew_s, epoch=clock.epoch)
        if clock.is_stale(s.skew_s, s.epoch)
        else s
        for s in message.sightings
    )
    stale = message.skew_s is not None and clock.is_stale(message.skew_s, message.epoch)
    if not stale and sightings == message.sightings:
        return message
    if stale:
        message = evolve(message, skew_s=clock.skew_s, epoch=clock.epoch)
    return evolve(message, sightings=sightings)


def refresh_host_messages(messages: Iterable[HostMessage], clock: HostClock) -> list[HostMessage]:
    """Those of a host's messages that its new estimate re-corrects, re-corrected."""
    refreshed = []
    for message in messages:
        if message.host == clock.host:
            updated = refresh_clock(message, clock)
            if updated is not message:
                refreshed.append(updated)
    return refreshed
