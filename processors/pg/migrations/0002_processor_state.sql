-- The processor's own state, so that a restarted (or another) instance continues exactly where
-- the last committed batch stopped. Values of the pure core are JSONB snapshots
-- (processors/snapshots.py); the columns beside them are what the store looks rows up by.

-- One host's folded view of one message (observations.HostMessage).
CREATE TABLE proc_host_messages (
    host            text NOT NULL,
    local_id        text NOT NULL,
    chat            text,                      -- the group, once the message is complete
    author_key      text,
    first_partition integer NOT NULL,          -- the raw event that first named it
    first_offset    bigint NOT NULL,
    state           jsonb NOT NULL,
    PRIMARY KEY (host, local_id)
);
CREATE INDEX proc_host_messages_group ON proc_host_messages (chat, author_key)
    WHERE chat IS NOT NULL;

-- Each host's clock estimator (clocks.HostClock, with its window of samples).
CREATE TABLE proc_host_clocks (
    host            text PRIMARY KEY,
    last_seq        bigint NOT NULL,
    skew_s          double precision NOT NULL,
    state           jsonb NOT NULL
);

-- The canonical messages as the pure core built them (canonical.CanonicalMessage), per group:
-- what the next recomputation of a group diffs against.
CREATE TABLE proc_group_messages (
    id              text PRIMARY KEY,
    chat            text NOT NULL,
    author_key      text NOT NULL,
    state           jsonb NOT NULL
);
CREATE INDEX proc_group_messages_group ON proc_group_messages (chat, author_key);

-- Latest read of each non-message object per host (CHAT, USER, ...).
CREATE TABLE proc_objects (
    host            text NOT NULL,
    obj             text NOT NULL,
    obj_id          text NOT NULL,
    seq             bigint NOT NULL,
    state           jsonb NOT NULL,
    PRIMARY KEY (host, obj, obj_id)
);

-- Ids that stopped existing (re-clustering or a merge) and the id that holds their copies now.
CREATE TABLE message_aliases (
    old_id          text PRIMARY KEY,
    new_id          text NOT NULL
);

-- How many steps (clock corrections) of the host's clock the estimate has followed.
ALTER TABLE host_clocks ADD COLUMN steps integer NOT NULL DEFAULT 0;

-- Records consumed per partition (stats), counted in the same transaction as the offset.
ALTER TABLE offsets ADD COLUMN consumed bigint NOT NULL DEFAULT 0;

-- What a redrive needs besides the record: its broker time (clock evidence) and the
-- decoder's classification of the fault.
ALTER TABLE dead_letters ADD COLUMN broker_utc timestamptz;
ALTER TABLE dead_letters ADD COLUMN kind text NOT NULL DEFAULT 'schema';
ALTER TABLE dead_letters ADD COLUMN host text;
ALTER TABLE dead_letters ADD COLUMN seq bigint;

CREATE INDEX messages_author ON messages (lower(author), posted_utc, id);
