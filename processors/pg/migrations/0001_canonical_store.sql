-- The canonical archive: what the processor writes and the publishers read.
-- All times are UTC (timestamptz). Ids are deterministic (processors/canonical.py), never serials.

CREATE TABLE chats (
    name            text PRIMARY KEY,          -- Skype's chat id, verbatim (#alice/$bob;a7ab…)
    topic           text NOT NULL DEFAULT '',
    members         text[] NOT NULL DEFAULT '{}',
    created_utc     timestamptz,
    change_seq      bigint NOT NULL
);

CREATE TABLE users (
    handle          text PRIMARY KEY,
    display_name    text NOT NULL DEFAULT '',
    change_seq      bigint NOT NULL
);

CREATE TABLE messages (
    id              text PRIMARY KEY,
    chat            text NOT NULL,
    author          text NOT NULL,
    author_name     text NOT NULL DEFAULT '',
    posted_utc      timestamptz NOT NULL,      -- Skype's TIMESTAMP corrected by the host clock offset
    type            text NOT NULL,             -- SAID, EMOTED, SETTOPIC, ...
    body            text NOT NULL,             -- current plain text; '' once deleted
    body_markup     text NOT NULL,             -- current body as Skype wrote it (markup, entities)
    edited_utc      timestamptz,               -- last edit; NULL when never edited
    edited_by       text,
    deleted         boolean NOT NULL DEFAULT false,
    change_seq      bigint NOT NULL
);
CREATE INDEX messages_chat_time ON messages (chat, posted_utc, id);

-- Every body a message ever had; revision 0 is the original when it is known.
CREATE TABLE revisions (
    message_id      text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    revision        integer NOT NULL,
    body_markup     text NOT NULL,
    editor          text,
    edited_utc      timestamptz,               -- NULL for the original
    deleted         boolean NOT NULL DEFAULT false,
    PRIMARY KEY (message_id, revision)
);

-- Provenance: which host saw the message, under which local id and clock.
CREATE TABLE observations (
    host            text NOT NULL,
    local_id        text NOT NULL,
    message_id      text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    local_timestamp bigint NOT NULL,           -- Skype's TIMESTAMP as that host wrote it
    corrected_utc   timestamptz NOT NULL,
    tz_offset_s     integer NOT NULL,          -- the host's UTC offset, for display of local time
    first_partition integer NOT NULL,
    first_offset    bigint NOT NULL,
    PRIMARY KEY (host, local_id)
);
CREATE INDEX observations_message ON observations (message_id);

-- Each host's estimated clock offset over time (host clock minus true time).
CREATE TABLE host_clocks (
    host            text NOT NULL,
    seq             bigint NOT NULL,           -- the host's event sequence number of the estimate
    offset_s        double precision NOT NULL,
    samples         integer NOT NULL,
    PRIMARY KEY (host, seq)
);

-- Consumed Kafka positions, written in the same transaction as what they produced.
CREATE TABLE offsets (
    consumer        text NOT NULL,
    topic           text NOT NULL,
    partition       integer NOT NULL,
    next_offset     bigint NOT NULL,
    PRIMARY KEY (consumer, topic, partition)
);

-- The change stream. change_seq is handed out under an advisory lock held to commit
-- (processors/store.py), so its order is commit order and a reader never skips a row.
CREATE TABLE changes (
    change_seq      bigint PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('message', 'chat', 'user')),
    key             text NOT NULL,
    chat            text,
    posted_utc      timestamptz
);

CREATE TABLE dead_letters (
    id              bigserial PRIMARY KEY,
    topic           text NOT NULL,
    partition       integer NOT NULL,
    "offset"        bigint NOT NULL,
    key             bytea,
    value           bytea NOT NULL,
    reason          text NOT NULL,
    created_utc     timestamptz NOT NULL DEFAULT now(),
    redriven_utc    timestamptz,
    UNIQUE (topic, partition, "offset")
);
