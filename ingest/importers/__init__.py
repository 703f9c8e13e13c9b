"""Importers: Skype history files (export archives, main.db) as raw events, through the agent's
spool and delivery (issue 16)."""
