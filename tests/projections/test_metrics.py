"""The clinic metrics a derive writes (summed from the touch-level parts it keeps per
customer) equal each metric computed straight from every touch (``DIRECT``, the oracle),
after a full derive and after incremental ones that bring late touches of every kind the
metrics count; so does ``CLINIC_METRICS_SQL``, the one statement readers of older
projections run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from journey.projections.metrics import CLINIC_METRICS_SQL, PARTS
from tests.clinic import demo_store
from tests.projections.helpers import PSEUDONYMS, append, every_table, project
from tests.touches import touch

from journey.projections.projector import Projector


SURVEYS = ("explained_problem", "explained_complications", "explained_guarantees", "price_justified")
DIRECT = """
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
DIRECT = DIRECT.replace("$surveys", "\n".join(
    f"    UNION ALL SELECT '{q}', 'doctor', doctor, count(*) FILTER (WHERE {q}), count({q}), 'share' "
    f"FROM reviews WHERE doctor IS NOT NULL GROUP BY 3 HAVING count({q}) > 0" for q in SURVEYS))
"""The oracle: each metric computed straight from every touchpoint, the way the derive did
before it kept parts per customer (the money unit: the commonest currency; the data has one)."""


def _comparable(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return sorted((tuple(float(f"{v:.9g}") if isinstance(v, float) else v for v in row) for row in rows), key=repr)


def metrics_match_the_query(con: duckdb.DuckDBPyConnection) -> None:
    kept = _comparable(con.execute("SELECT * FROM clinic_metrics").fetchall())
    assert kept == _comparable(con.execute(DIRECT).fetchall())
    assert kept == _comparable(con.execute(CLINIC_METRICS_SQL).fetchall())


def _late(patients: list[str], visitor: str) -> list[dict[str, Any]]:
    """Late touches of every kind the metrics count, for existing patients and nobody."""
    out: list[dict[str, Any]] = []
    for n, patient in enumerate(patients):
        who = {"customer_id": patient}
        out += [
            touch("review", f"late-review-{n}", customer=who, properties={
                "platform": "maps", "rating": 1 + n % 5, "answered": n % 2 == 0, "doctor": "Dr. Late",
                "explained_problem": n % 3 == 0, "price_justified": n % 2 == 1}),
            touch("treatment_plan", f"late-plan-{n}", customer=who, properties={
                "plan_id": f"lp-{n}", "status": ("accepted", "declined", "proposed")[n % 3], "doctor": "Dr. Late"}),
            touch("call", f"late-call-{n}", customer=who, properties={
                "direction": "inbound", "answered": n % 2 == 0, "administrator": "Late admin"}),
            touch("no_show", f"late-no-show-{n}", customer=who,
                  properties={"booking_id": f"lb-{n}", "doctor": "Dr. Late"}),
            touch("payment", f"late-payment-{n}", customer=who, occurred_at="2020-01-01T10:00:00+03:00"),
            touch("booking", f"late-booking-{n}", customer=who),
        ]
    out.append(touch("ad_spend", "late-spend", channel="late_channel"))
    out.append({"event_id": "late-merge", "type": "identity_link", "occurred_at": "2020-01-01T10:00:00+03:00",
                "customer": {"customer_id": patients[0], "anonymous_id": visitor}})
    return out


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    directory = tmp_path_factory.mktemp("metrics")
    store = demo_store(directory, patients=400)
    return store, directory


def test_metrics_from_kept_parts_equal_the_query_over_every_touch(clinic: tuple[Any, Path]) -> None:
    store, directory = clinic
    projector = project(store, directory / "incremental.duckdb")
    metrics_match_the_query(projector.con)
    customers = [e.touch["customer"] for _, e in store.read() if "customer" in e.touch]
    patients = sorted({c["customer_id"] for c in customers if c.get("customer_id")})[:6]
    visitor = next(c["anonymous_id"] for c in customers if c.get("anonymous_id") and not c.get("customer_id"))
    late = _late(patients, visitor)
    for batch in (late[:7], late[7:20], late[20:]):
        append(store, *batch)
        projector.catch_up()
        projector.derive()
        assert projector.last_derive is not None and projector.last_derive.since is not None  # incremental
        metrics_match_the_query(projector.con)
    assert projector.con.execute(f"SELECT count(*) FROM {PARTS} WHERE value = 'Dr. Late'").fetchone()[0] > 0
    rebuilt = project(store, directory / "rebuilt.duckdb")
    assert every_table(projector.con) == every_table(rebuilt.con)
    kept = f"SELECT * FROM {PARTS} ORDER BY ALL"
    assert projector.con.execute(kept).fetchall() == rebuilt.con.execute(kept).fetchall()
    projector.close()
    rebuilt.close()


def test_a_projection_without_the_kept_parts_derives_in_full(tmp_path: Path) -> None:
    store = demo_store(tmp_path, patients=30)
    path = tmp_path / "projection.duckdb"
    project(store, path).close()
    con = duckdb.connect(str(path))
    con.execute(f"DROP TABLE {PARTS}")
    con.close()
    append(store, touch("call", "late-call", customer={"customer_id": "P-late"}))
    projector = Projector(store, path, PSEUDONYMS)
    projector.catch_up()
    projector.derive()
    assert projector.last_derive is not None and projector.last_derive.since is None
    metrics_match_the_query(projector.con)
    projector.close()
