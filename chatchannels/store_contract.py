"""What the processors and the publishers agree on about the canonical store beyond its
tables (processors/pg/migrations/*.sql), in one place that neither side owns: the processor
NOTIFYs this channel when a batch adds changes (delivered on commit), and the publishers'
change loop LISTENs on it."""

from __future__ import annotations

NOTIFY_CHANNEL = "chatchannels_changes"
