-- A version token per group (chat, author), replaced by every transaction that recomputes
-- the group. A processor keeps recently recomputed groups in memory and uses them only while
-- the stored token is the one it wrote; a random token (not a counter) also detects its
-- own rolled-back writes.
CREATE TABLE proc_groups (
    chat            text NOT NULL,
    author_key      text NOT NULL,
    version         uuid NOT NULL,
    PRIMARY KEY (chat, author_key)
);

-- The clock epochs of each host message's corrections (-1: made without evidence), so that
-- when a host's estimate moves, the messages it may re-correct (engine.py step 2) are found
-- without reading all of the host's messages: only those of its current epoch or of none.
ALTER TABLE proc_host_messages ADD COLUMN epoch_min integer NOT NULL DEFAULT -1;
ALTER TABLE proc_host_messages ADD COLUMN epoch_max integer NOT NULL DEFAULT -1;
CREATE INDEX proc_host_messages_epochs ON proc_host_messages (host, epoch_max, epoch_min);
