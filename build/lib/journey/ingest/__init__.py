"""Ingestion: sources of raw records and the pipeline that validates and stores them."""

from journey.ingest.pipeline import IngestSummary, Ingestor, RetrySummary
from journey.ingest.sources import EventLogColumns, RawRecord, read_event_log, read_jsonl

__all__ = [
    "EventLogColumns",
    "IngestSummary",
    "Ingestor",
    "RawRecord",
    "RetrySummary",
    "read_event_log",
    "read_jsonl",
]
