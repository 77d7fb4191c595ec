"""Projections of the event store into DuckDB: loading stored events (``load``),
deriving the analyst tables (``derive``, with the stage model, consent, points of
failure and clinic metrics), the projector and its tracking, publishing a read-only
snapshot (``publish``) and the operations the command line runs (``operations``).
See docs/analyst-schema.md for the tables."""
