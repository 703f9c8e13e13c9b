-- Which of each host's sequence numbers reached the log (processors/completeness.py): one row
-- per maximal run of consecutive seqs of one agent or importer session, not one per event,
-- with the broker times of the run's first and last records. Dead letters count: they are in
-- the log. A seq missing between a host's runs is an event lost between a spool and the log.
CREATE TABLE seq_runs (
    host            text NOT NULL,
    session         text NOT NULL,
    first_seq       bigint NOT NULL,
    last_seq        bigint NOT NULL,
    first_utc       timestamptz,               -- broker time (NULL when the record had none)
    last_utc        timestamptz,
    source          text NOT NULL,             -- skype-api (an agent) or an importer's
    PRIMARY KEY (host, session, first_seq),
    CHECK (first_seq <= last_seq)
);

-- When each partition's position last moved: the processor's last batch, for `status`.
ALTER TABLE offsets ADD COLUMN advanced_utc timestamptz;
