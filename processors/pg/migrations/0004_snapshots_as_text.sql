-- The processor's snapshots are written and read by snapshots.py only, never queried by
-- their contents: as jsonb, PostgreSQL parsed every one on the way in and printed it again
-- on the way out. As text they are stored as orjson wrote them (measured: COPY of 187,500
-- host-message snapshots 1.75 s as jsonb, 0.81 s as text). A snapshot written by an older
-- version reads back the same, whatever its whitespace or key order.
ALTER TABLE proc_host_messages ALTER COLUMN state TYPE text USING state::text;
ALTER TABLE proc_host_clocks ALTER COLUMN state TYPE text USING state::text;
ALTER TABLE proc_group_messages ALTER COLUMN state TYPE text USING state::text;
ALTER TABLE proc_objects ALTER COLUMN state TYPE text USING state::text;
