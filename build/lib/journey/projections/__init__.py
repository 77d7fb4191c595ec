"""Projections of the event store (identity now; DuckDB analytics in a later issue)."""

from journey.projections.identity import identity_map

__all__ = ["identity_map"]
