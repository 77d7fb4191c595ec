"""Limits, each defined once: every module that enforces one imports it from here."""

from __future__ import annotations

__all__ = ["MAX_RECORD_BYTES"]

MAX_RECORD_BYTES = 64 * 1024
"""The largest record accepted by default (a JSON line, a log row, a Kafka message);
a larger one is quarantined without being loaded whole. ``JOURNEY_MAX_RECORD_BYTES``
changes it."""
