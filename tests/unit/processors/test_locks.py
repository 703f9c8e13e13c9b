from chatchannels.processors.pg.locks import changes_lock, files_lock, group_lock, lock_key


def test_stores_in_one_database_take_different_keys() -> None:
    group = ("#alice/$bob;1", "bob")
    assert group_lock("public", group) != group_lock("replay_20261207", group)
    assert changes_lock("public") != changes_lock("replay_20261207")
    assert files_lock("public") != files_lock("replay_20261207")
    assert len({changes_lock("s"), files_lock("s"), group_lock("s", ("changes", ""))}) == 3


def test_keys_are_signed_64_bit_and_the_same_in_every_process() -> None:
    # Fixed value: another process (another instance, a later release) must compute the
    # same key, so it may not depend on Python's per-process string hashing.
    assert lock_key("public", "changes") == 8624775826235788662
    key = lock_key("public", "group", "#c", "a")
    assert -(2**63) <= key < 2**63
