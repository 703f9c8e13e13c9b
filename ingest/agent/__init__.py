"""The ingest agent: attach to a Skype desktop, capture chats, spool to disk, deliver to Kafka."""
