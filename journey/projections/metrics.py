"""The clinic metrics managers ask for (../shared/DOMAIN.md), in one long table.

``clinic_metrics``: metric, dimension, value, numerator, denominator, result
(= numerator / denominator). A *new patient* is a customer with at least one visit.

- ``administrator_conversion``: customers whose first inbound call the administrator
  took -> of them, new patients (unique calls -> new patients);
- ``missed_call_rate``: inbound calls not answered / inbound calls, per administrator and overall;
- ``no_show_rate``: no-shows / bookings, per doctor and overall;
- ``repeat_visits_per_new_patient``: visits after the first / new patients, by first-visit doctor;
- ``lifetime_revenue``: payments / new patients, by first-visit doctor and by first channel;
- ``cost_per_new_patient``: ``ad_spend`` / new patients whose first channel it is, by channel.
"""

from __future__ import annotations

import duckdb

__all__ = ["write_clinic_metrics"]

_METRICS = """
CREATE OR REPLACE TABLE clinic_metrics AS
WITH calls AS (
    SELECT * FROM touchpoints WHERE type = 'call' AND direction = 'inbound'
), first_calls AS (
    SELECT customer_id, arg_min(administrator, seq) AS administrator FROM calls
    WHERE customer_id IS NOT NULL GROUP BY customer_id
), patients AS (
    SELECT * FROM customers WHERE visits > 0
), spend AS (
    SELECT channel, sum(amount) AS cost FROM touchpoints WHERE type = 'ad_spend' GROUP BY channel
), parts AS (
    SELECT 'administrator_conversion' AS metric, 'administrator' AS dimension, f.administrator AS value,
        count(p.customer_id) AS numerator, count(*) AS denominator
    FROM first_calls f LEFT JOIN patients p USING (customer_id) GROUP BY f.administrator
    UNION ALL
    SELECT 'missed_call_rate', 'administrator', administrator, count(*) FILTER (WHERE NOT answered), count(*)
    FROM calls GROUP BY administrator
    UNION ALL
    SELECT 'missed_call_rate', 'all', 'all', count(*) FILTER (WHERE NOT answered), count(*) FROM calls
    UNION ALL
    SELECT 'no_show_rate', 'doctor', doctor, count(*) FILTER (WHERE type = 'no_show'), count(*) FILTER (WHERE type = 'booking')
    FROM touchpoints WHERE type IN ('booking', 'no_show') GROUP BY doctor
    UNION ALL
    SELECT 'no_show_rate', 'all', 'all', count(*) FILTER (WHERE type = 'no_show'), count(*) FILTER (WHERE type = 'booking')
    FROM touchpoints WHERE type IN ('booking', 'no_show')
    UNION ALL
    SELECT 'repeat_visits_per_new_patient', 'doctor', first_visit_doctor, sum(visits - 1), count(*)
    FROM patients GROUP BY first_visit_doctor
    UNION ALL
    SELECT 'lifetime_revenue', 'doctor', first_visit_doctor, sum(revenue), count(*) FROM patients GROUP BY first_visit_doctor
    UNION ALL
    SELECT 'lifetime_revenue', 'channel', first_channel, sum(revenue), count(*) FROM patients GROUP BY first_channel
    UNION ALL
    SELECT 'cost_per_new_patient', 'channel', s.channel, any_value(s.cost), count(p.customer_id)
    FROM spend s LEFT JOIN patients p ON p.first_channel = s.channel GROUP BY s.channel
)
SELECT metric, dimension, value, CAST(numerator AS DOUBLE) AS numerator, CAST(denominator AS DOUBLE) AS denominator,
    CAST(numerator AS DOUBLE) / nullif(denominator, 0) AS result
FROM parts ORDER BY metric, dimension, value
"""


def write_clinic_metrics(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)write ``clinic_metrics`` from ``touchpoints`` and ``customers``."""
    con.execute(_METRICS)
