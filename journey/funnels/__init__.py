"""Funnels, points of failure, clinic metrics and attribution over the DuckDB projection."""
