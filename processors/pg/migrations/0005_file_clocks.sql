-- Imported files' clocks (processors/file_clocks.py): a file's offset is estimated from the
-- messages it shares, by id, with files imported before it, not from its events' clocks.

-- The copies of shared ids (main.db: chat, author, remote_id, type): which file holds one,
-- with the TIMESTAMP as the file stored it. A batch looks up its ids' other copies here.
CREATE TABLE proc_shared_ids (
    xid             text NOT NULL,
    host            text NOT NULL,
    "timestamp"     bigint NOT NULL,
    PRIMARY KEY (xid, host)
);

-- Each import host's rank (the broker time of its first event, in seconds; NULL: unknown)
-- and its estimate in force (also in proc_host_clocks, kept here beside the evidence so a
-- batch compares without reading every file's clock).
CREATE TABLE proc_file_hosts (
    host             text PRIMARY KEY,
    first_broker_utc double precision,
    offset_s         bigint NOT NULL,
    samples          bigint NOT NULL
);

-- The evidence: how many shared ids the files host_a < host_b hold with TIMESTAMPs
-- diff_s apart (host_a's minus host_b's). A handful of rows per two files.
CREATE TABLE proc_file_pairs (
    host_a          text NOT NULL,
    host_b          text NOT NULL,
    diff_s          bigint NOT NULL,
    copies          bigint NOT NULL,
    PRIMARY KEY (host_a, host_b, diff_s)
);
