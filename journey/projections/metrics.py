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

from journey.projections.kept import customers_in, differ

__all__ = ["CLINIC_METRICS_SQL", "DOCTOR_SCORECARD", "PARTS", "PEOPLE", "TYPES", "remember_people", "write_clinic_metrics"]

DOCTOR_SCORECARD = ("first_visit_patients", "plan_acceptance", "repeat_visits_per_new_patient",
                    "lifetime_revenue", "review_rating", "explained_problem", "explained_complications",
                    "explained_guarantees", "price_justified", "unanswered_negative_reviews")
"""The doctor scorecard's metrics, in the order the report shows them."""

_SURVEY = ("explained_problem", "explained_complications", "explained_guarantees", "price_justified")



PARTS = "internal.metric_parts"
"""What each customer's touches add to the touch-level metrics (kept between derives, the
rows of the customers a derive changes replaced): customer_id (NULL: touches of nobody,
ad spend say), part, value (the part's dimension value, NULL for none), n (the touches
counted), a and b (the part's numbers: see ``_PARTS``). Counts and sums add up over
customers, so ``clinic_metrics`` sums this small table instead of scanning every touch."""

TYPES = ("payment", "ad_spend", "call", "no_show", "visit", "booking", "treatment_plan", "review")
"""The touch types the metric parts count."""
PEOPLE = "customer_id, ambiguous, visits, first_channel, revenue, first_visit_doctor"
"""The columns of ``customers`` the clinic metrics read (the query selects no others)."""

# Per customer (and part, value): the touch-level numbers the clinic metrics sum.
# n counts the part's touches (a group exists in the metrics when its touches do);
# a and b: call -> missed; due:* -> no-shows; spend -> the spend; plan -> accepted,
# decided; review_rating -> sum, count of ratings; survey:* -> yes, answers;
# negative_review -> unanswered. first_call and booking say the customer has one
# (first_call's value: the administrator of their first inbound call). (One list of
# parts per touch, unnested and summed in one aggregation, cost more: 1.05 s against
# 0.85 s for every touch at 1M.)
_PARTS = """
WITH t AS MATERIALIZED (
    SELECT customer_id, seq, type, currency, channel, amount, administrator, answered, doctor, branch,
        booking_id, direction, status, rating, CASE WHEN type = 'review' THEN properties END AS properties
    FROM $touches
    WHERE type IN $types
), reviews AS MATERIALIZED (
    SELECT customer_id, coalesce(doctor, properties->>'doctor') AS doctor, rating,
        TRY_CAST(properties->>'answered' AS BOOLEAN) AS answered,
        TRY_CAST(properties->>'explained_problem' AS BOOLEAN) AS explained_problem,
        TRY_CAST(properties->>'explained_complications' AS BOOLEAN) AS explained_complications,
        TRY_CAST(properties->>'explained_guarantees' AS BOOLEAN) AS explained_guarantees,
        TRY_CAST(properties->>'price_justified' AS BOOLEAN) AS price_justified
    FROM t WHERE type = 'review' AND coalesce(doctor, properties->>'doctor') IS NOT NULL
), calls AS MATERIALIZED (
    SELECT * FROM t WHERE type = 'call' AND direction = 'inbound'
), parts AS (
    SELECT customer_id, 'currency:' || type AS part, currency AS value, count(*) AS n, NULL AS a, NULL AS b
    FROM t WHERE type IN ('payment', 'ad_spend') AND currency IS NOT NULL GROUP BY ALL
    UNION ALL SELECT customer_id, 'call', administrator, count(*), count(*) FILTER (WHERE NOT answered), NULL
        FROM calls GROUP BY ALL
    UNION ALL SELECT customer_id, 'first_call', arg_min(administrator, seq), 1, NULL, NULL
        FROM calls WHERE customer_id IS NOT NULL GROUP BY customer_id
    UNION ALL SELECT customer_id, 'due:' || dimension, value, count(*), count(*) FILTER (WHERE type = 'no_show'), NULL
        FROM (SELECT * FROM t WHERE type = 'no_show' OR (type = 'visit' AND booking_id IS NOT NULL))
        UNPIVOT INCLUDE NULLS (value FOR dimension IN (doctor, branch)) GROUP BY ALL
    UNION ALL SELECT customer_id, 'spend', channel, count(*), sum(amount), NULL FROM t WHERE type = 'ad_spend' GROUP BY ALL
    UNION ALL SELECT customer_id, 'booking', NULL, 1, NULL, NULL
        FROM t WHERE type = 'booking' AND customer_id IS NOT NULL GROUP BY customer_id
    UNION ALL SELECT customer_id, 'plan', doctor, count(*), count(*) FILTER (WHERE status = 'accepted'),
        count(*) FILTER (WHERE status IN ('accepted', 'declined')) FROM t
        WHERE type = 'treatment_plan' AND doctor IS NOT NULL GROUP BY ALL
    UNION ALL SELECT customer_id, 'review_rating', doctor, count(*), sum(rating), count(rating) FROM reviews GROUP BY ALL
$surveys
    UNION ALL SELECT customer_id, 'negative_review', doctor, count(*), count(*) FILTER (WHERE NOT answered), NULL
        FROM reviews WHERE rating <= 2 GROUP BY ALL
)
SELECT customer_id, part, value, n, CAST(a AS DECIMAL(38, 6)) AS a, CAST(b AS BIGINT) AS b FROM parts
""".replace("$types", str(TYPES)).replace("$surveys", "\n".join(
    f"    UNION ALL SELECT customer_id, 'survey:{q}', doctor, count(*), count(*) FILTER (WHERE {q}), count({q}) "
    f"FROM reviews GROUP BY ALL" for q in _SURVEY))

# The clinic metrics from the touch-level parts in $parts and the customers table.
_FROM_PARTS = """
WITH totals AS (
    SELECT part, value, sum(n) AS n, sum(a) AS a, sum(b) AS b FROM $parts GROUP BY ALL
), people AS (
    SELECT $people FROM customers WHERE NOT ambiguous
), patients AS (
    SELECT * FROM people WHERE visits > 0
), money AS (  -- the commonest currency of payments, else of ad spend
    SELECT coalesce(
        (SELECT value FROM totals WHERE part = 'currency:payment' ORDER BY n DESC, value LIMIT 1),
        (SELECT value FROM totals WHERE part = 'currency:ad_spend' ORDER BY n DESC, value LIMIT 1)) AS unit
), calls AS (
    SELECT value AS administrator, n AS calls, a AS missed FROM totals WHERE part = 'call'
), first_calls AS (
    SELECT customer_id, value AS administrator FROM $parts WHERE part = 'first_call'
), due AS (
    SELECT part, value, n AS due, a AS missed FROM totals WHERE part LIKE 'due:%'
), spend AS (
    SELECT value AS channel, a AS cost FROM totals WHERE part = 'spend'
), leads AS (
    SELECT p.first_channel AS channel, count(*) AS leads, count(*) FILTER (WHERE p.visits > 0) AS patients,
        coalesce(sum(p.revenue) FILTER (WHERE p.visits > 0), 0) AS revenue,
        count(*) FILTER (WHERE p.customer_id IN (SELECT customer_id FROM first_calls)) AS callers,
        count(*) FILTER (WHERE p.customer_id IN
            (SELECT customer_id FROM $parts WHERE part = 'booking')) AS bookers
    FROM people p WHERE p.first_channel IS NOT NULL GROUP BY 1
), channels AS (
    SELECT s.channel, s.cost, coalesce(l.leads, 0) AS leads, coalesce(l.patients, 0) AS patients,
        coalesce(l.revenue, 0) AS revenue, coalesce(l.callers, 0) AS callers, coalesce(l.bookers, 0) AS bookers
    FROM spend s LEFT JOIN leads l USING (channel)
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
    UNION ALL SELECT 'no_show_rate', 'all', 'all', coalesce(sum(missed), 0), coalesce(sum(due), 0), 'share'
        FROM due WHERE part = 'due:doctor'
    UNION ALL SELECT 'no_show_rate', substr(part, 5), value, missed, due, 'share' FROM due WHERE value IS NOT NULL
    UNION ALL SELECT 'missed_call_rate', 'all', 'all', coalesce(sum(missed), 0), coalesce(sum(calls), 0), 'share'
        FROM calls
    UNION ALL SELECT 'missed_call_rate', 'administrator', administrator, missed, calls, 'share'
        FROM calls WHERE administrator IS NOT NULL
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
    UNION ALL SELECT 'plan_acceptance', 'doctor', value, a, b, 'share' FROM totals WHERE part = 'plan'
    UNION ALL SELECT 'repeat_visits_per_new_patient', 'doctor', first_visit_doctor, sum(visits - 1), count(*),
        'ratio' FROM patients WHERE first_visit_doctor IS NOT NULL GROUP BY 3
    UNION ALL SELECT 'lifetime_revenue', 'doctor', first_visit_doctor, sum(revenue), count(*),
        (SELECT unit FROM money) FROM patients WHERE first_visit_doctor IS NOT NULL GROUP BY 3
    UNION ALL SELECT 'review_rating', 'doctor', value, a, b, 'rating' FROM totals WHERE part = 'review_rating' AND b > 0
    UNION ALL SELECT substr(part, 8), 'doctor', value, a, b, 'share' FROM totals WHERE part LIKE 'survey:%' AND b > 0
    UNION ALL SELECT 'unanswered_negative_reviews', 'doctor', value, a, n, 'share'
        FROM totals WHERE part = 'negative_review'
)
SELECT metric, dimension, value, CAST(numerator AS DOUBLE) AS numerator, CAST(denominator AS DOUBLE) AS denominator,
    CAST(numerator AS DOUBLE) / nullif(denominator, 0) AS result, unit
FROM parts ORDER BY metric, dimension, value
""".replace("$people", PEOPLE)

CLINIC_METRICS_SQL = _FROM_PARTS.replace(
    "WITH totals AS (", f"WITH metric_parts AS ({_PARTS.replace('$touches', 'touchpoints')}), totals AS (", 1
).replace("$parts", "metric_parts")
"""The query ``clinic_metrics`` holds, in one statement over ``touchpoints`` and ``customers``
(readers of a projection written before the table run it as is): the same parts and sums
as the derive, so each metric has one definition."""


def remember_people(con: duckdb.DuckDBPyConnection, dirty: str) -> None:
    """Keep the ``customers`` columns the metrics read of the customers listed in ``dirty``
    before a derive replaces their rows (``write_clinic_metrics`` compares them after)."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE people_before AS SELECT {PEOPLE} FROM customers WHERE {customers_in(con, dirty)}")


def write_clinic_metrics(con: duckdb.DuckDBPyConnection, dirty: str | None = None,
                         touches: str = "touchpoints", *, compare: bool = True) -> bool:
    """(Re)write ``clinic_metrics`` from ``customers`` and the touch-level parts kept per
    customer (``PARTS``): built from ``touchpoints`` (``dirty`` None), or with ``dirty``
    (a table of customer ids, NULL for the touches of nobody) those customers' parts
    replaced from ``touches`` (a table holding every touch of theirs). Equals
    ``CLINIC_METRICS_SQL`` over the same tables (tests/projections/test_metrics.py). An
    incremental derive keeps the table when the dirty customers' parts and the columns of
    ``customers`` it reads (``remember_people`` kept them before) did not change (with
    ``compare`` False it writes the table without comparing). Returns whether the table
    was written."""
    parts = _PARTS.replace("$touches", touches)
    mine = None if dirty is None else customers_in(con, dirty)
    if dirty is None:
        con.execute(f"CREATE OR REPLACE TABLE {PARTS} AS {parts}")
    elif not compare:
        con.execute(f"DELETE FROM {PARTS} WHERE {mine}")
        con.execute(f"INSERT INTO {PARTS} BY NAME {parts}")
    else:
        con.execute(f"CREATE OR REPLACE TEMP TABLE parts_before AS SELECT * FROM {PARTS} WHERE {mine}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE parts_after AS {parts}")
        con.execute(f"DELETE FROM {PARTS} WHERE {mine}")
        con.execute(f"INSERT INTO {PARTS} BY NAME SELECT * FROM parts_after")
        changed = (differ(con, "parts_before", "parts_after")
                   or differ(con, "people_before", f"(SELECT {PEOPLE} FROM customers WHERE {mine})"))
        con.execute("DROP TABLE parts_before; DROP TABLE parts_after; DROP TABLE people_before")
        if not changed:
            return False
    con.execute("CREATE OR REPLACE TABLE clinic_metrics AS " + _FROM_PARTS.replace("$parts", PARTS))
    return True
