"""Consent in the projections: each customer's consent in force, and the outbound
messages that were sent without it (compliance violations).

The engine records what producers did and never rewrites it: a violation is a row
in ``consent_violations``, not a changed message. Rules (docs/privacy.md):

* a marketing message (purposes in ``MARKETING``) needs a ``marketing`` grant for its
  medium (or ``all``) in force at its ``occurred_at``: no grant, or a later
  withdrawal, is a violation;
* a service message (reminders, confirmations) is a violation only after the
  customer explicitly withdrew ``reminders`` for that medium;
* the consent in force at a moment is the customer's latest consent touch for the
  medium (or ``all``) and purpose at or before it.
"""

from __future__ import annotations

import duckdb

from journey.domain.channels import CONSENT_CHANNELS

__all__ = ["CHANNELS", "MARKETING", "SERVICE", "derive_consent"]

CHANNELS = CONSENT_CHANNELS
MARKETING = ("promotion", "newsletter", "birthday", "recall")
SERVICE = ("reminder", "confirmation")
_MEDIUM = "CASE properties->>'medium' WHEN 'push' THEN 'messenger' ELSE properties->>'medium' END"

_SQL = f"""
CREATE OR REPLACE TEMP TABLE consent_log AS
SELECT customer_id, channel, purpose, occurred_at, arg_max(action, seq) AS action
FROM (
    SELECT t.customer_id, c.channel, t.purpose, t.occurred_at, t.seq, t.properties->>'action' AS action
    FROM $touches t JOIN (SELECT unnest($channels) AS channel) c
      ON c.channel = t.properties->>'channel' OR t.properties->>'channel' = 'all'
    WHERE t.type = 'consent' AND t.customer_id IS NOT NULL AND $scope
)
GROUP BY ALL;

$write consent_state $as
SELECT customer_id, channel, purpose, arg_max(action, occurred_at) = 'granted' AS granted,
    max(occurred_at) AS since
FROM consent_log GROUP BY ALL ORDER BY ALL;

CREATE OR REPLACE TEMP TABLE outbound AS
SELECT event_id, customer_id, occurred_at, {_MEDIUM} AS channel, purpose,
    CASE WHEN purpose IN (SELECT unnest($marketing)) THEN 'marketing' ELSE 'reminders' END AS needs
FROM $touches
WHERE type = 'message' AND coalesce(direction, 'outbound') = 'outbound' AND customer_id IS NOT NULL AND $scope
  AND (purpose IN (SELECT unnest($marketing)) OR purpose IN (SELECT unnest($service)));

$write consent_violations $as
SELECT o.event_id, o.customer_id, o.occurred_at, o.channel, o.purpose,
    CASE WHEN o.needs = 'marketing' AND c.action IS NULL THEN 'marketing without consent'
         WHEN o.needs = 'marketing' THEN 'marketing after consent was withdrawn'
         ELSE 'reminder after reminders were refused' END AS reason,
    c.occurred_at AS consent_changed_at
FROM outbound o
ASOF LEFT JOIN consent_log c
  ON c.customer_id = o.customer_id AND c.channel = o.channel AND c.purpose = o.needs
 AND o.occurred_at >= c.occurred_at
WHERE (o.needs = 'marketing' AND coalesce(c.action, 'none') <> 'granted')
   OR (o.needs = 'reminders' AND c.action = 'withdrawn')
ORDER BY o.occurred_at, o.event_id;

DROP TABLE consent_log;
DROP TABLE outbound;
"""


def _literal(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"  # our own constants, never user input


def derive_consent(con: duckdb.DuckDBPyConnection, dirty: str | None = None,
                   touches: str = "touchpoints") -> None:
    """(Re)build ``consent_state`` and ``consent_violations`` from ``touchpoints``; with
    ``dirty`` (a table of customer ids) only those customers' rows are replaced, from
    ``touches`` (a table holding every touch of theirs): a customer's consent and
    violations depend on their own touches alone."""
    sql = _SQL.replace("$channels", _literal(CHANNELS)).replace("$marketing", _literal(MARKETING)) \
        .replace("$service", _literal(SERVICE))
    if dirty is None:
        con.execute(sql.replace("$scope", "TRUE").replace("$touches", "touchpoints")
                    .replace("$write", "CREATE OR REPLACE TABLE").replace("$as", "AS"))
        return
    scope = f"customer_id IN (SELECT customer_id FROM {dirty})"
    for table in ("consent_state", "consent_violations"):
        con.execute(f"DELETE FROM {table} WHERE {scope}")
    con.execute(sql.replace("$scope", scope).replace("$touches", touches).replace("$write", "INSERT INTO")
                .replace("$as", "BY NAME"))
