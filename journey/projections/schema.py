"""The DuckDB analyst schema (v3) and the projector's own (``internal``) tables.

Analyst tables (stable names, documented in docs/analyst-schema.md) are derived;
``internal`` holds the append-only base the projector maintains exactly once.
"""

from __future__ import annotations

__all__ = ["ANALYST_TABLES", "BASE_DDL", "MIGRATIONS", "READ_PROPERTIES", "SCHEMA_VERSION", "read_properties"]

SCHEMA_VERSION = 5

READ_PROPERTIES: dict[str, tuple[str, ...]] = {
    "profile": ("birth_year", "sex", "city", "district", "income", "social_status", "family", "education", "problem"),
    "consent": ("action", "channel"),
    "message": ("medium",),
    "review": ("nps", "doctor", "answered", "explained_problem", "explained_complications", "explained_guarantees",
               "price_justified"),
}
"""The properties the derive reads, per touch type; it reads no other (a test holds the derive's
SQL to this). ``internal.touches.read_properties`` keeps them, so an incremental derive
re-reads a customer's touches without their whole ``properties``: a column that, read for
1,000 scattered customers' rows at 1M touches, cost ~58 ms against ~4 ms for these."""


def read_properties(properties: str = "properties", touch_type: str = "type") -> str:
    """The SQL of ``read_properties`` from a touch's ``properties`` (JSON) and type."""
    def pairs(names: tuple[str, ...]) -> str:
        return ", ".join(f"'{name}', {properties}->'{name}'" for name in names)

    branches = " ".join(f"WHEN '{kind}' THEN json_object({pairs(names)})" for kind, names in READ_PROPERTIES.items())
    return f"CASE {touch_type} {branches} END"


ANALYST_TABLES = (
    "touchpoints",
    "customers",
    "journey_edges",
    "journey_nodes",
    "journey_variants",
    "stage_transitions",
    "stage_funnel",
    "stage_conversion_curve",
    "stage_months",
    "stage_changes",
    "failure_points",
    "failure_reasons",
    "stage_correlations",
    "clinic_metrics",
    "identity_ambiguities",
    "customer_identifiers",
    "consent_state",
    "consent_violations",
    "projection_status",
    "dead_letters",
)

BASE_DDL = [
    "CREATE SCHEMA IF NOT EXISTS internal",
    """CREATE TABLE IF NOT EXISTS internal.touches (
        position BIGINT NOT NULL,
        event_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        activity VARCHAR NOT NULL,
        channel VARCHAR,
        source VARCHAR,
        occurred_at TIMESTAMPTZ NOT NULL,
        recorded_at TIMESTAMPTZ NOT NULL,
        patient_id VARCHAR,
        phone_key VARCHAR,
        email_key VARCHAR,
        anonymous_key VARCHAR,
        amount DECIMAL(21, 6),
        currency VARCHAR,
        doctor VARCHAR,
        administrator VARCHAR,
        branch VARCHAR,
        booking_id VARCHAR,
        visit_id VARCHAR,
        campaign VARCHAR,
        direction VARCHAR,
        purpose VARCHAR,
        answered BOOLEAN,
        outcome VARCHAR,
        status VARCHAR,
        rating INTEGER,
        properties JSON,
        key_id VARCHAR,
        referrer_key VARCHAR,
        read_properties JSON  -- the properties the derive reads (READ_PROPERTIES)
    )""",
    """CREATE TABLE IF NOT EXISTS internal.identity_events (
        position BIGINT NOT NULL,
        event_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        recorded_at TIMESTAMPTZ NOT NULL,
        patient_id VARCHAR,
        phone_key VARCHAR,
        email_key VARCHAR,
        anonymous_key VARCHAR,
        key_id VARCHAR
    )""",
    # key id -> pseudonym of the identifiers sealed with it (to forget them on erasure)
    "CREATE TABLE IF NOT EXISTS internal.subjects (key_id VARCHAR PRIMARY KEY, subject VARCHAR NOT NULL)",
    "CREATE TABLE IF NOT EXISTS internal.erasures (position BIGINT NOT NULL, key_id VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS internal.meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR
    )""",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        position BIGINT PRIMARY KEY,
        event_id VARCHAR,
        topic VARCHAR,
        reason VARCHAR NOT NULL,
        dead_at TIMESTAMPTZ NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS projection_status (
        position BIGINT NOT NULL,
        events BIGINT NOT NULL,
        derived_position BIGINT NOT NULL,
        updated_at TIMESTAMPTZ NOT NULL,
        as_of TIMESTAMPTZ,
        schema_version INTEGER NOT NULL
    )""",
]

MIGRATIONS: dict[int, list[str]] = {
    4: ["ALTER TABLE internal.touches ADD COLUMN read_properties JSON",
        f"UPDATE internal.touches SET read_properties = {read_properties()}"],
}
"""A projection file of schema version N is brought to N + 1 by ``MIGRATIONS[N]`` (one version at
a time, in one transaction); a version with no entry needs ``journey rebuild``."""
