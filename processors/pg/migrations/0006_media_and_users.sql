-- Imported media, and the people a member event is about.

-- An export's shared file (a MEDIA object): its content's sha256 names the archived file
-- (<media dir>/<sha256[:2]>/<sha256>); NULL when the export had the file's record but not
-- its content. Each property from the read made last in true time, as for chats.
CREATE TABLE media (
    docid           text PRIMARY KEY,
    sha256          text,
    name            text NOT NULL DEFAULT '',
    size            bigint,
    mime            text
);

-- USERS of ADDEDMEMBERS, LEFT, KICKED and SETROLE: their body is empty.
ALTER TABLE messages ADD COLUMN users text[] NOT NULL DEFAULT '{}';
-- The docids the current body refers to: a media row that arrives after its message finds
-- the messages whose pages must link it. Most messages have none, so the index skips them.
-- Rows written before this migration have neither until a replay rewrites them.
ALTER TABLE messages ADD COLUMN media text[] NOT NULL DEFAULT '{}';
CREATE INDEX messages_media ON messages USING gin (media) WHERE media <> '{}';
