"""Rebuilding the store from the raw log: the replay, its archive digest, its site swap."""
