"""Messages typed on a desktop reach their month page, their chat's feed and the server's
/search.json while every part follows live, each its own process: agent, processor,
publisher (woken by the store's NOTIFY) and server (whose open index must see new commits).

`demo --once` checks the archive after a final `publish --once`; this is the live path.
It runs bench_e2e's harness, so the benchmark's measuring tool is the path tested here;
how long it takes is the benchmark's business, not this test's.
"""

import pytest

from bench.bench_e2e import EndToEnd

pytestmark = pytest.mark.integration


def test_live_messages_reach_page_feed_and_search(stack, tmp_path):
    e2e = EndToEnd(stack, tmp_path)
    try:
        e2e.start()
        # Alice's post is sent from this desktop, Bob's received on it: both live flows.
        # wait_seen fails, naming what is missing, unless each is in all three places.
        e2e.wait_seen(e2e.converse(2, first=0))
    finally:
        e2e.close()
