"""The clinic metrics managers ask for (../shared/DOMAIN.md): each defined once, here.

``clinic_metrics``: metric, dimension, value, numerator, denominator, result
(= numerator / denominator) and unit (``share``, ``count``, ``ratio``, ``rating`` or the
currency of money). The report, ``journey metrics`` and ``journey failures`` read this
table; none computes a metric of its own. People are the customers who are not
ambiguous; a *new patient* is one with at least one visit.

The clinic (``dimension = 'all'``): ``customers``, ``new_patients``, ``conversion`` (new
patients / customers), ``no_show_rate`` (no-shows / appointments that were due: no-shows
and visits that had a booking), ``repeat_rate`` (new patients who came again),
``revenue``, ``ad_spend``, ``cost_per_new_patient`` (ad spend / new patients brought by a
channel with ad spend), ``missed_call_rate``.

Per channel (the customer's first channel): ``leads`` (customers), ``new_patients``,
``conversion``, ``cost_per_lead``, ``cost_per_call`` (per customer who called the channel's
tracked number), ``cost_per_booking`` (per customer who booked), ``cost_per_new_patient``,
``lifetime_revenue`` (per new patient) and ``roas`` (their lifetime revenue / spend).

Per administrator: ``administrator_conversion`` (customers whose first inbound call they
took -> new patients), ``missed_call_rate``. Per branch and per doctor: ``no_show_rate``.

The doctor scorecard (by the doctor of the patient's first visit unless said):
``first_visit_patients``, ``plan_acceptance`` (plans the doctor proposed that were
accepted / decided), ``repeat_visits_per_new_patient``, ``lifetime_revenue``,
``review_rating`` (public reviews naming the doctor), ``explained_problem``,
``explained_complications``, ``explained_guarantees`` and ``price_justified`` (surveys
naming the doctor), ``unanswered_negative_reviews`` (of negative reviews, rating <= 2).
"""

from __future__ import annotations

import duckdb

__all__ = ["CLINIC_METRICS_SQL", "DOCTOR_SCORECARD", "write_clinic_metrics"]

DOCTOR_SCORECARD = ("first_visit_patients", "plan_acceptance", "repeat_visits_per_new_patient",
                    "lifetime_revenue", "review_rating", "explained_problem", "explained_complications",
                    "explained_guarantees", "price_justified", "unanswered_negative_reviews")
"""The doctor scorecard's metrics, in the order the report shows them."""

CLINIC_METRICS_SQL = """
WITH people AS (
    SELECT * FROM customers WHERE NOT ambiguous
), patients AS (
    SELECT * FROM people WHERE visits > 0
), money AS (
    SELECT coalesce(mode(currency) FILTER (WHERE type = 'payment'),
                    mode(currency) FILTER (WHERE type = 'ad_spend')) AS unit FROM touchpoints
), calls AS (
    SELECT * FROM touchpoints WHERE type = 'call' AND direction = 'inbound'
), first_calls AS (
    SELECT customer_id, arg_min(administrator, seq) AS administrator FROM calls
    WHERE customer_id IS NOT NULL GROUP BY customer_id
), due AS (  -- appointments that were due: a no-show, or a visit that had a booking
    SELECT doctor, branch, type = 'no_show' AS missed FROM touchpoints
    WHERE type = 'no_show' OR (type = 'visit' AND booking_id IS NOT NULL)
), spend AS (
    SELECT channel, sum(amount) AS cost FROM touchpoints WHERE type = 'ad_spend' GROUP BY channel
), leads AS (
    SELECT p.first_channel AS channel, count(*) AS leads, count(*) FILTER (WHERE p.visits > 0) AS patients,
        coalesce(sum(p.revenue) FILTER (WHERE p.visits > 0), 0) AS revenue,
        count(*) FILTER (WHERE p.customer_id IN (SELECT customer_id FROM calls)) AS callers,
        count(*) FILTER (WHERE p.customer_id IN
            (SELECT customer_id FROM touchpoints WHERE type = 'booking')) AS bookers
    FROM people p WHERE p.first_channel IS NOT NULL GROUP BY 1
), channels AS (
    SELECT s.channel, s.cost, coalesce(l.leads, 0) AS leads, coalesce(l.patients, 0) AS patients,
        coalesce(l.revenue, 0) AS revenue, coalesce(l.callers, 0) AS callers, coalesce(l.bookers, 0) AS bookers
    FROM spend s LEFT JOIN leads l USING (channel)
), plans AS (
    SELECT doctor, count(*) FILTER (WHERE status = 'accepted') AS accepted,
        count(*) FILTER (WHERE status IN ('accepted', 'declined')) AS decided
    FROM touchpoints WHERE type = 'treatment_plan' AND doctor IS NOT NULL GROUP BY doctor
), reviews AS (
    SELECT coalesce(doctor, properties->>'doctor') AS doctor, rating,
        TRY_CAST(properties->>'answered' AS BOOLEAN) AS answered,
        TRY_CAST(properties->>'explained_problem' AS BOOLEAN) AS explained_problem,
        TRY_CAST(properties->>'explained_complications' AS BOOLEAN) AS explained_complications,
        TRY_CAST(properties->>'explained_guarantees' AS BOOLEAN) AS explained_guarantees,
        TRY_CAST(properties->>'price_justified' AS BOOLEAN) AS price_justified
    FROM touchpoints WHERE type = 'review'
), parts AS (
    SELECT 'customers' AS metric, 'all' AS dimension, 'all' AS value, count(*) AS numerator, 1 AS denominator,
        'count' AS unit FROM people
    UNION ALL SELECT 'new_patients', 'all', 'all', count(*), 1, 'count' FROM patients
    UNION ALL SELECT 'conversion', 'all', 'all', (SELECT count(*) FROM patients), count(*), 'share' FROM people
    UNION ALL SELECT 'repeat_rate', 'all', 'all', count(*) FILTER (WHERE visits > 1), count(*), 'share' FROM patients
    UNION ALL SELECT 'revenue', 'all', 'all', coalesce(sum(revenue), 0), 1, (SELECT unit FROM money) FROM people
    UNION ALL SELECT 'ad_spend', 'all', 'all', sum(cost), 1, (SELECT unit FROM money) FROM spend HAVING count(*) > 0
    UNION ALL SELECT 'cost_per_new_patient', 'all', 'all', sum(cost), sum(patients), (SELECT unit FROM money)
        FROM channels HAVING count(*) > 0
    UNION ALL SELECT 'no_show_rate', 'all', 'all', count(*) FILTER (WHERE missed), count(*), 'share' FROM due
    UNION ALL SELECT 'no_show_rate', 'doctor', doctor, count(*) FILTER (WHERE missed), count(*), 'share'
        FROM due WHERE doctor IS NOT NULL GROUP BY doctor
    UNION ALL SELECT 'no_show_rate', 'branch', branch, count(*) FILTER (WHERE missed), count(*), 'share'
        FROM due WHERE branch IS NOT NULL GROUP BY branch
    UNION ALL SELECT 'missed_call_rate', 'all', 'all', count(*) FILTER (WHERE NOT answered), count(*), 'share'
        FROM calls
    UNION ALL SELECT 'missed_call_rate', 'administrator', administrator, count(*) FILTER (WHERE NOT answered),
        count(*), 'share' FROM calls WHERE administrator IS NOT NULL GROUP BY administrator
    UNION ALL SELECT 'administrator_conversion', 'administrator', f.administrator, count(p.customer_id), count(*),
        'share' FROM first_calls f LEFT JOIN patients p USING (customer_id)
        WHERE f.administrator IS NOT NULL GROUP BY f.administrator
    UNION ALL SELECT 'leads', 'channel', channel, leads, 1, 'count' FROM leads
    UNION ALL SELECT 'new_patients', 'channel', channel, patients, 1, 'count' FROM leads
    UNION ALL SELECT 'conversion', 'channel', channel, patients, leads, 'share' FROM leads
    UNION ALL SELECT 'lifetime_revenue', 'channel', channel, revenue, patients, (SELECT unit FROM money) FROM leads
    UNION ALL SELECT 'cost_per_lead', 'channel', channel, cost, leads, (SELECT unit FROM money) FROM channels
    UNION ALL SELECT 'cost_per_call', 'channel', channel, cost, callers, (SELECT unit FROM money) FROM channels
    UNION ALL SELECT 'cost_per_booking', 'channel', channel, cost, bookers, (SELECT unit FROM money) FROM channels
    UNION ALL SELECT 'cost_per_new_patient', 'channel', channel, cost, patients, (SELECT unit FROM money) FROM channels
    UNION ALL SELECT 'roas', 'channel', channel, revenue, cost, 'ratio' FROM channels
    UNION ALL SELECT 'first_visit_patients', 'doctor', first_visit_doctor, count(*), 1, 'count'
        FROM patients WHERE first_visit_doctor IS NOT NULL GROUP BY 3
    UNION ALL SELECT 'plan_acceptance', 'doctor', doctor, accepted, decided, 'share' FROM plans
    UNION ALL SELECT 'repeat_visits_per_new_patient', 'doctor', first_visit_doctor, sum(visits - 1), count(*),
        'ratio' FROM patients WHERE first_visit_doctor IS NOT NULL GROUP BY 3
    UNION ALL SELECT 'lifetime_revenue', 'doctor', first_visit_doctor, sum(revenue), count(*),
        (SELECT unit FROM money) FROM patients WHERE first_visit_doctor IS NOT NULL GROUP BY 3
    UNION ALL SELECT 'review_rating', 'doctor', doctor, sum(rating), count(rating), 'rating'
        FROM reviews WHERE doctor IS NOT NULL GROUP BY 3 HAVING count(rating) > 0
$surveys
    UNION ALL SELECT 'unanswered_negative_reviews', 'doctor', doctor, count(*) FILTER (WHERE NOT answered),
        count(*), 'share' FROM reviews WHERE doctor IS NOT NULL AND rating <= 2 GROUP BY 3
)
SELECT metric, dimension, value, CAST(numerator AS DOUBLE) AS numerator, CAST(denominator AS DOUBLE) AS denominator,
    CAST(numerator AS DOUBLE) / nullif(denominator, 0) AS result, unit
FROM parts ORDER BY metric, dimension, value
"""
_SURVEY = ("explained_problem", "explained_complications", "explained_guarantees", "price_justified")
CLINIC_METRICS_SQL = CLINIC_METRICS_SQL.replace("$surveys", "\n".join(
    f"    UNION ALL SELECT '{q}', 'doctor', doctor, count(*) FILTER (WHERE {q}), count({q}), 'share' "
    f"FROM reviews WHERE doctor IS NOT NULL GROUP BY 3 HAVING count({q}) > 0" for q in _SURVEY))
"""The query ``clinic_metrics`` holds (readers of a projection older than it run it as is)."""


def write_clinic_metrics(con: duckdb.DuckDBPyConnection) -> None:
    """(Re)write ``clinic_metrics`` from ``touchpoints`` and ``customers``."""
    con.execute(f"CREATE OR REPLACE TABLE clinic_metrics AS {CLINIC_METRICS_SQL}")
