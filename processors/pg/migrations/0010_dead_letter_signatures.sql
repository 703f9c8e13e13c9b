-- The signature headers of each dead letter (chatchannels/event_signing.py): a redrive checks
-- them again, as the consumer did, so that no refused writer gets in by a redrive.
ALTER TABLE dead_letters ADD COLUMN signer bytea;
ALTER TABLE dead_letters ADD COLUMN signature bytea;
