"""Points of failure and clinic metrics on the demo clinic: the effects the generator
plants are found, with the contract columns; the statistics agree with scipy."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from scipy.stats import chi2_contingency
from scipy.stats.contingency import odds_ratio

from journey.projections.failure import MIN_GROUP, two_proportion_p
from journey.projections.derive import derive
from journey.projections.stage_model import load_stage_model
from tests.clinic import demo_projection

OUTCOMES = Path(__file__).resolve().parents[2] / "journey" / "projections" / "outcome_stages.toml"

CONTRACTS = {
    "stage_funnel": [("stage", "VARCHAR"), ("stage_order", "INTEGER"), ("entered", "BIGINT"),
                     ("reached_next", "BIGINT"), ("dropped", "BIGINT"), ("conversion_from_previous", "DOUBLE"),
                     ("conversion_from_first", "DOUBLE"), ("sla_seconds", "BIGINT"), ("missed_sla", "BIGINT"),
                     ("median_seconds_to_next", "DOUBLE")],
    "failure_points": [("stage", "VARCHAR"), ("next_stage", "VARCHAR"), ("dimension", "VARCHAR"),
                       ("value", "VARCHAR"), ("entered", "BIGINT"), ("failed", "BIGINT"),
                       ("failure_rate", "DOUBLE"), ("overall_rate", "DOUBLE"), ("lift", "DOUBLE"),
                       ("p_value", "DOUBLE"), ("significant", "BOOLEAN")],
    "failure_reasons": [("stage", "VARCHAR"), ("reason", "VARCHAR"), ("failed", "BIGINT"), ("share", "DOUBLE")],
}


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8000 prospects: enough for a 30% missed-call rate to show through the noise."""
    return demo_projection(tmp_path_factory.mktemp("clinic"), patients=8000)


@pytest.fixture(scope="module")
def outcomes(clinic: Path, tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    """The same projection re-derived under the outcome stage model."""
    copy = tmp_path_factory.mktemp("outcomes") / "projection.duckdb"
    copy.write_bytes(clinic.read_bytes())
    con = duckdb.connect(str(copy))
    con.execute("SET enable_progress_bar = false")
    con.begin()
    derive(con, load_stage_model(OUTCOMES))
    con.commit()
    return con


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
    assert flagged[-1][0] == "Dr. Petrov" and flagged[-1][1] < 1
    reasons = dict(outcomes.execute("SELECT reason, failed FROM failure_reasons WHERE stage = 'first_visit'").fetchall())
    assert reasons["declined plan"] > 0 and reasons["negative review"] > 0


def test_reminders_make_a_visit_more_likely(outcomes: duckdb.DuckDBPyConnection) -> None:
    ratio, low, significant = outcomes.execute(
        "SELECT odds_ratio, ci_low, significant FROM stage_correlations "
        "WHERE stage = 'booking' AND feature = 'message:reminder'").fetchone()
    assert significant and low > 1 and ratio > 1.5
    top = outcomes.execute("SELECT reason FROM failure_reasons WHERE stage = 'booking' ORDER BY failed DESC LIMIT 1")
    assert top.fetchone() == ("no-show",)


def test_stage_funnel_counts_add_up(clinic: Path) -> None:
    con = duckdb.connect(str(clinic), read_only=True)
    rows = con.execute("SELECT stage, entered, reached_next, dropped, missed_sla FROM stage_funnel "
                       "ORDER BY stage_order").fetchall()
    assert [r[0] for r in rows] == ["awareness", "contact", "booking", "first_visit", "treatment", "retention",
                                    "advocacy"]
    for _, entered, reached, dropped, missed in rows[:-1]:
        assert reached + dropped == entered and 0 <= missed <= entered
    assert rows[-1][2:] == (None, None, None)
    contact = con.execute("SELECT count(DISTINCT customer_id) FROM touchpoints WHERE stage = 'contact'").fetchone()[0]
    assert rows[1][1] == contact


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
