"""Funnels and attribution over the published DuckDB projection (read side), and
reading the points-of-failure and clinic-metrics tables the derive wrote
(``journey.projections.failure``, ``journey.projections.metrics``)."""
