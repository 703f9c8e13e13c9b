"""The processor: raw events in, the canonical archive out.

Three layers, each importing only the ones before it:

- the pure core, at this level (values in, values out, no I/O): decode*.py read a raw
  record's event, observations.py folds it into a host's message, clocks.py and
  file_clocks.py correct its time, matching.py and group_index.py cluster a group's host
  messages into canonical messages (canonical.py), rows.py shapes them as rows; batch.py
  does this for a batch of records (engine.py, for one record at a time, is its reference);
- pg/, the PostgreSQL adapters: pg/store.py runs a batch in one transaction (claim offsets,
  decode, fold, recompute groups, publish changes, advance offsets) through adapters with
  one job each; consumer.py is the Kafka loop around it, metrics.py its Prometheus
  metrics, cli.py its commands;
- replay/, rebuilding the store from the log with the same processor, and checking it.

A raw record becomes a canonical message in batch.py (decode_record, fold_records) and
group_index.py (GroupIndex), driven by pg/store.py's `Store._steps`. Nothing here imports
the publishers; they read the store's tables and change stream (store_contract.py).
"""
