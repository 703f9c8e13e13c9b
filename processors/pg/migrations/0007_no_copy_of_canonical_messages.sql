-- The processor no longer keeps a copy of each canonical message's state: a group that is
-- not in its cache is read back as its stored host messages and indexed again, which gives
-- exactly the messages the store holds (they are a function of that set; pg/groups.py).
-- The copy was a third of the bytes a message cost to write.
DROP TABLE proc_group_messages;
