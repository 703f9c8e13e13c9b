"""Month manifests (publishers/manifests.py): the documented bytes, and what moves the digest."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime, timedelta

from chatchannels.publishers.manifests import (
    differing_months,
    message_line,
    month_manifest,
)
from chatchannels.publishers.model import Message, Revision

T0 = datetime(2026, 3, 1, 9, 30, 0, 250000, tzinfo=UTC)


def message(id_: str, at: datetime, body: str = "hi", **changes) -> Message:
    base = Message(
        id=id_,
        chat="#alice/$bob;1",
        author="alice",
        author_name="Alice",
        posted_utc=at,
        type="SAID",
        body=body,
        body_markup=body,
        edited_utc=None,
        edited_by=None,
        deleted=False,
        revisions=(Revision(1, body, None, None, False),),
        hosts=("alice-pc",),
    )
    return dataclasses.replace(base, **changes)


def recomputed(messages: list[dict]) -> str:
    """The README's recipe, written from its text: one compact sorted-key JSON line a
    message, in (posted_utc, id) order, UTF-8."""
    digest = hashlib.sha256()
    for doc in sorted(messages, key=lambda m: (m["posted_utc"], m["id"])):
        line = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest.update(line.encode() + b"\n")
    return digest.hexdigest()


def test_the_digest_is_the_documented_bytes():
    edited = T0 + timedelta(minutes=5)
    messages = [
        message("m2", T0 + timedelta(seconds=1), "żółw ✓"),
        message(
            "m1",
            T0,
            "second",
            edited_utc=edited,
            edited_by="alice",
            revisions=(
                Revision(1, "first", None, None, False),
                Revision(2, "second", "alice", edited, False),
            ),
        ),
    ]
    docs = [
        {
            "id": "m1",
            "chat": "#alice/$bob;1",
            "author": "alice",
            "author_name": "Alice",
            "posted_utc": "2026-03-01T09:30:00.250000Z",
            "type": "SAID",
            "body": "second",
            "body_markup": "second",
            "edited_utc": "2026-03-01T09:35:00.250000Z",
            "edited_by": "alice",
            "deleted": False,
            "users": [],
            "media": [],
            "revisions": [
                {
                    "revision": 1,
                    "body_markup": "first",
                    "editor": None,
                    "edited_utc": None,
                    "deleted": False,
                },
                {
                    "revision": 2,
                    "body_markup": "second",
                    "editor": "alice",
                    "edited_utc": "2026-03-01T09:35:00.250000Z",
                    "deleted": False,
                },
            ],
        },
        {
            "id": "m2",
            "chat": "#alice/$bob;1",
            "author": "alice",
            "author_name": "Alice",
            "posted_utc": "2026-03-01T09:30:01.250000Z",
            "type": "SAID",
            "body": "żółw ✓",
            "body_markup": "żółw ✓",
            "edited_utc": None,
            "edited_by": None,
            "deleted": False,
            "users": [],
            "media": [],
            "revisions": [
                {
                    "revision": 1,
                    "body_markup": "żółw ✓",
                    "editor": None,
                    "edited_utc": None,
                    "deleted": False,
                }
            ],
        },
    ]
    manifest = month_manifest("#alice/$bob;1", "2026-03", messages)
    assert manifest == {
        "format": "chatchannels.manifest.v1",
        "chat": "#alice/$bob;1",
        "month": "2026-03",
        "messages": 2,
        "revisions": 3,
        "sha256": recomputed(docs),
    }
    assert "żółw".encode() in message_line(messages[0])


def test_order_in_and_hosts_do_not_matter_content_does():
    a, b = message("m1", T0), message("m2", T0)  # same time: the id decides
    digest = month_manifest("c", "2026-03", [a, b])["sha256"]
    assert month_manifest("c", "2026-03", [b, a])["sha256"] == digest
    more_hosts = dataclasses.replace(a, hosts=("alice-pc", "bob-pc"))
    assert month_manifest("c", "2026-03", [more_hosts, b])["sha256"] == digest
    for changed in (
        dataclasses.replace(a, body_markup="hi!"),
        dataclasses.replace(a, deleted=True),
        dataclasses.replace(a, revisions=(*a.revisions, Revision(2, "x", "bob", T0, False))),
        dataclasses.replace(a, id="m0"),
        dataclasses.replace(a, posted_utc=T0 + timedelta(microseconds=1)),
    ):
        assert month_manifest("c", "2026-03", [changed, b])["sha256"] != digest, changed
    assert month_manifest("c", "2026-03", [a])["sha256"] != digest


def test_differing_months_names_changed_and_one_sided_months():
    left = {("a", "2026-01"): "x", ("a", "2026-02"): "y", ("b", "2026-01"): "z"}
    right = {("a", "2026-01"): "x", ("a", "2026-02"): "Y", ("c", "2026-05"): "w"}
    assert differing_months(left, right) == [("a", "2026-02"), ("b", "2026-01"), ("c", "2026-05")]
    assert differing_months(left, dict(left)) == []
