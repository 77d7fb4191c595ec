"""Points of failure and clinic metrics on the demo clinic: the effects the generator
plants are found, with the contract columns; the statistics agree with scipy."""

from __future__ import annotations

import random
from pathlib import Path

import duckdb
import pytest
from scipy.stats import chi2_contingency
from scipy.stats.contingency import odds_ratio

from journey.projections.failure import kaplan_meier
from journey.projections.stats import MIN_GROUP, benjamini_hochberg, two_proportion_p
from tests.clinic import demo_projection


CONTRACTS = {
    "stage_funnel": [("stage", "VARCHAR"), ("stage_order", "INTEGER"), ("entered", "BIGINT"),
                     ("reached_next", "BIGINT"), ("dropped", "BIGINT"), ("conversion_from_previous", "DOUBLE"),
                     ("conversion_from_first", "DOUBLE"), ("sla_seconds", "BIGINT"), ("missed_sla", "BIGINT"),
                     ("median_seconds_to_next", "DOUBLE"), ("in_progress", "BIGINT"), ("lost", "BIGINT"),
                     ("conversion_within_sla", "DOUBLE")],
    "failure_points": [("stage", "VARCHAR"), ("next_stage", "VARCHAR"), ("dimension", "VARCHAR"),
                       ("value", "VARCHAR"), ("entered", "BIGINT"), ("failed", "BIGINT"),
                       ("failure_rate", "DOUBLE"), ("overall_rate", "DOUBLE"), ("lift", "DOUBLE"),
                       ("p_value", "DOUBLE"), ("significant", "BOOLEAN"), ("q_value", "DOUBLE"),
                       ("better", "BOOLEAN")],
    "failure_reasons": [("stage", "VARCHAR"), ("reason", "VARCHAR"), ("failed", "BIGINT"), ("share", "DOUBLE")],
}


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8000 prospects: enough for a 30% missed-call rate to show through the noise."""
    return demo_projection(tmp_path_factory.mktemp("clinic"), patients=8000)


@pytest.fixture(scope="module")
def outcomes(clinic: Path) -> duckdb.DuckDBPyConnection:
    """The projection under the default (milestone) stage model."""
    return duckdb.connect(str(clinic), read_only=True)


def test_tables_have_the_shared_contract_columns(clinic: Path) -> None:
    con = duckdb.connect(str(clinic), read_only=True)
    for table, columns in CONTRACTS.items():
        found = con.execute("SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = $t "
                            "ORDER BY column_index", {"t": table}).fetchall()
        assert found == columns, table


def test_irina_is_flagged_at_contact(clinic: Path) -> None:
    con = duckdb.connect(str(clinic), read_only=True)
    worse = con.execute("SELECT value, lift, p_value FROM failure_points WHERE stage = 'contact' "
                        "AND dimension = 'administrator' AND significant AND lift > 1").fetchall()
    assert [v for v, _, _ in worse] == ["Irina"]
    missed = dict(con.execute("SELECT value, result FROM clinic_metrics WHERE metric = 'missed_call_rate' "
                              "AND dimension = 'administrator'").fetchall())
    assert 0.25 < missed.pop("Irina") < 0.35 and max(missed.values()) < 0.1
    reasons = dict(con.execute("SELECT reason, failed FROM failure_reasons WHERE stage = 'contact'").fetchall())
    assert reasons["missed call without callback"] > 100


def test_doctors_differ_in_retention(clinic: Path, outcomes: duckdb.DuckDBPyConnection) -> None:
    con = duckdb.connect(str(clinic), read_only=True)
    repeat = dict(con.execute("SELECT value, result FROM clinic_metrics WHERE metric = "
                              "'repeat_visits_per_new_patient'").fetchall())
    assert min(repeat, key=repeat.get) == "Dr. Volkov" and max(repeat, key=repeat.get) == "Dr. Petrov"
    revenue = dict(con.execute("SELECT value, result FROM clinic_metrics WHERE metric = 'lifetime_revenue' "
                               "AND dimension = 'doctor'").fetchall())
    assert min(revenue, key=revenue.get) == "Dr. Volkov"
    flagged = outcomes.execute("SELECT value, lift FROM failure_points WHERE stage = 'first_visit' "
                               "AND dimension = 'doctor' AND significant ORDER BY lift DESC").fetchall()
    assert flagged[0][0] == "Dr. Volkov" and flagged[0][1] > 1.3
    assert all(lift > 1 for _, lift in flagged)  # a failure point loses patients more often than the rest
    better = outcomes.execute("SELECT value, lift FROM failure_points WHERE stage = 'first_visit' "
                              "AND dimension = 'doctor' AND better ORDER BY lift").fetchall()
    assert better[0][0] == "Dr. Petrov" and better[0][1] < 1  # shown apart, as what to learn from
    reasons = dict(outcomes.execute("SELECT reason, failed FROM failure_reasons WHERE stage = 'first_visit'").fetchall())
    assert reasons["declined plan"] > 0 and reasons["negative review"] > 0


def test_the_planted_culprits_top_the_report(clinic: Path) -> None:
    from journey.maps.clinic import breakdown, failure_points
    from journey.projections.metrics import DOCTOR_SCORECARD

    con = duckdb.connect(str(clinic), read_only=True)
    top = [(p.stage, p.value) for p in failure_points(con, limit=2)]
    assert set(top) == {("contact", "Irina"), ("first_visit", "Dr. Volkov")}
    assert not [p for p in failure_points(con) if p.dimension == "channel"]  # channel mix is not blame
    card = breakdown(con, "doctor", DOCTOR_SCORECARD)
    accepted = {doctor: figures["plan_acceptance"].result for doctor, figures in card.items()}
    explained = {doctor: figures["explained_problem"].result for doctor, figures in card.items()}
    assert min(accepted, key=accepted.get) == "Dr. Volkov" == min(explained, key=explained.get)
    assert set(card["Dr. Volkov"]) == set(DOCTOR_SCORECARD)


def test_acquisition_costs_count_only_the_channels_own_patients(clinic: Path) -> None:
    con = duckdb.connect(str(clinic), read_only=True)
    cost = dict(con.execute("SELECT value, result FROM clinic_metrics WHERE metric = 'cost_per_new_patient' "
                            "AND dimension = 'channel'").fetchall())
    assert cost["search_ads"] > cost["seo"]  # the demo's economics: paid search is dearer per patient
    spend, patients = con.execute(
        "SELECT (SELECT sum(amount) FROM touchpoints WHERE type = 'ad_spend' AND channel = 'search_ads'), "
        "count(*) FROM customers WHERE visits > 0 AND NOT ambiguous AND first_channel = 'search_ads'").fetchone()
    assert cost["search_ads"] == pytest.approx(float(spend) / patients)
    for metric in ("cost_per_lead", "cost_per_call", "cost_per_booking", "roas"):
        assert con.execute("SELECT count(*) FROM clinic_metrics WHERE metric = ? AND dimension = 'channel' "
                           "AND result > 0", [metric]).fetchone()[0] >= 5, metric


def test_reminders_make_a_visit_more_likely(outcomes: duckdb.DuckDBPyConnection) -> None:
    ratio, low, significant = outcomes.execute(
        "SELECT odds_ratio, ci_low, significant FROM stage_correlations "
        "WHERE stage = 'booking' AND feature = 'message:reminder'").fetchone()
    assert significant and low > 1 and ratio > 1.5
    top = outcomes.execute("SELECT reason FROM failure_reasons WHERE stage = 'booking' ORDER BY failed DESC LIMIT 1")
    assert top.fetchone() == ("no-show",)


def test_stage_funnel_counts_add_up(clinic: Path) -> None:
    con = duckdb.connect(str(clinic), read_only=True)
    rows = con.execute("SELECT stage, entered, reached_next, dropped, missed_sla, in_progress, lost "
                       "FROM stage_funnel ORDER BY stage_order").fetchall()
    assert [r[0] for r in rows] == ["awareness", "contact", "booking", "first_visit", "treatment", "retention",
                                    "advocacy"]
    for (_, entered, reached, dropped, missed, pending, lost), following in zip(rows, rows[1:]):
        assert reached + dropped == entered and 0 <= missed <= entered
        assert reached == following[1] <= entered  # reached means at least that far: never increasing
        assert dropped == pending + lost and pending >= 0 and lost >= 0
    assert rows[-1][2:] == (None,) * 5
    stages = [r[0] for r in rows]
    contact = con.execute("SELECT count(DISTINCT customer_id) FROM touchpoints WHERE list_position(?, stage) >= 2",
                          [stages]).fetchone()[0]
    assert rows[1][1] == contact  # got in touch, or booked without a call first (a walk-in), or further
    first_visit, treatment = rows[3][1], rows[4][1]
    assert treatment < 0.8 * first_visit  # a payment is no treatment: patients do fail this step
    treatment_lost, retention_pending = rows[4][6], rows[5][5]
    assert treatment_lost == 0 and retention_pending > 0  # a one-year SLA on a year of data: nobody lost yet


def test_odds_ratios_agree_with_scipy(outcomes: duckdb.DuckDBPyConnection) -> None:
    rows = outcomes.execute("SELECT customers_with, reached_with, customers_without, reached_without, odds_ratio "
                            "FROM stage_correlations WHERE odds_ratio IS NOT NULL LIMIT 20").fetchall()
    assert rows
    for n_with, r_with, n_without, r_without, ratio in rows:
        table = [[r_with, n_with - r_with], [r_without, n_without - r_without]]
        assert ratio == pytest.approx(odds_ratio(table, kind="sample").statistic)
    small = outcomes.execute("SELECT count(*) FROM stage_correlations WHERE odds_ratio IS NOT NULL AND least("
                             "reached_with, customers_with - reached_with, reached_without, "
                             "customers_without - reached_without) < 5").fetchone()[0]
    assert small == 0


def test_z_test_equals_chi_square_and_small_groups_are_not_tested() -> None:
    for failed_in, n_in, failed_out, n_out in [(40, 100, 300, 1000), (12, 50, 30, 200), (90, 300, 90, 300)]:
        expected = chi2_contingency([[failed_in, n_in - failed_in], [failed_out, n_out - failed_out]],
                                    correction=False).pvalue
        assert two_proportion_p(failed_in, n_in, failed_out, n_out) == pytest.approx(expected)
    assert two_proportion_p(3, 3, 100, 1000) is None  # an administrator with 3 calls is never blamed
    assert two_proportion_p(MIN_GROUP - 1, MIN_GROUP - 1, 10, 1000) is None


def test_kaplan_meier_agrees_with_lifelines() -> None:
    from lifelines import KaplanMeierFitter

    rng = random.Random(12)
    durations = [float(rng.choice([0, 1, 2, 3, 5, 8, 13, 21, 30])) for _ in range(400)]  # ties, zeros
    reached = [rng.random() < 0.6 for _ in durations]
    curve = kaplan_meier(durations, reached)
    fitter = KaplanMeierFitter().fit(durations, event_observed=reached)
    for time_, at_risk, done, censored, share in curve:
        assert share == pytest.approx(1 - fitter.survival_function_at_times(time_).iloc[0])
        table = fitter.event_table.loc[time_]
        assert (at_risk, done, censored) == (table["at_risk"], table["observed"], table["censored"])


def test_conversion_counts_journeys_still_open(clinic: Path) -> None:
    con = duckdb.connect(str(clinic), read_only=True)
    rows = con.execute("SELECT stage, entered, reached_next, in_progress, conversion_within_sla FROM stage_funnel "
                       "WHERE reached_next IS NOT NULL ORDER BY stage_order").fetchall()
    for stage, entered, reached, pending, within in rows:
        last = con.execute("SELECT max_by(conversion, seconds) FROM stage_conversion_curve WHERE stage = ? AND "
                           "seconds <= (SELECT sla_seconds FROM stage_funnel WHERE stage = ?)", [stage, stage]).fetchone()[0]
        assert within == pytest.approx(last), stage
        if pending:  # the open journeys are censored, not counted as failures
            assert within > (reached - con.execute(
                "SELECT missed_sla FROM stage_funnel WHERE stage = ?", [stage]).fetchone()[0]) / entered - 1e-9


def test_benjamini_hochberg_matches_the_textbook() -> None:
    from scipy.stats import false_discovery_control

    p = [0.01, 0.04, None, 0.03, 0.2, 0.001]
    expected = false_discovery_control([x for x in p if x is not None], method="bh")
    got = [q for q in benjamini_hochberg(p) if q is not None]
    assert got == pytest.approx(list(expected)) and benjamini_hochberg(p)[2] is None
