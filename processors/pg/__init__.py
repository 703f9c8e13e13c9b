"""The processor's PostgreSQL adapters, one job each; store.py runs a batch through them."""
