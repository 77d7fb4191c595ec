"""The clinic report, opened in headless Chromium: it renders with no console error and
no network request, its key numbers equal the projection, and it holds no patient ids."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from journey.maps.report import render_report, write_report
from tests.maps.browser import Page, chromium

METRICS = """
JSON.stringify(Array.from(document.querySelectorAll('[data-metric]')).map(
    e => [e.dataset.metric, e.dataset.value, e.textContent.trim()]))
"""


def expected_numbers(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """The headline numbers counted straight from touchpoints (not via the report's SQL)."""
    people = "customer_id IS NOT NULL AND customer_id NOT LIKE 'ambiguous:%'"
    everyone, patients, returning = con.execute(
        f"SELECT count(DISTINCT customer_id), count(DISTINCT customer_id) FILTER (WHERE type = 'visit'), "
        f"(SELECT count(*) FROM (SELECT customer_id FROM touchpoints WHERE type = 'visit' AND {people} "
        f"GROUP BY 1 HAVING count(*) > 1)) FROM touchpoints WHERE {people}").fetchone()
    no_shows, kept = con.execute("SELECT count(*) FILTER (WHERE type = 'no_show'), count(*) FILTER "
                                 "(WHERE type = 'visit' AND booking_id IS NOT NULL) FROM touchpoints").fetchone()
    revenue = con.execute(f"SELECT sum(amount)::DOUBLE FROM touchpoints WHERE type = 'payment' AND {people}").fetchone()[0]
    spend = con.execute("SELECT sum(amount)::DOUBLE FROM touchpoints WHERE type = 'ad_spend'").fetchone()[0]
    paid = con.execute(  # cost per new patient counts only the patients a channel with ad spend brought
        f"SELECT count(DISTINCT customer_id) FROM touchpoints WHERE type = 'visit' AND {people} AND customer_id IN "
        "(SELECT customer_id FROM customers WHERE first_channel IN "
        "(SELECT channel FROM touchpoints WHERE type = 'ad_spend'))").fetchone()[0]
    return {"new_patients": patients, "conversion": patients / everyone, "no_show_rate": no_shows / (no_shows + kept),
            "repeat_rate": returning / patients, "revenue": revenue, "cost_per_new_patient": spend / paid}


def _shown(text: str) -> float:
    number = float(re.sub(r"[^0-9.]", "", text))
    return number / 100 if text.endswith("%") else number


@pytest.fixture(scope="module")
def report(clinic_snapshot: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    con = duckdb.connect(str(clinic_snapshot), read_only=True)
    try:
        return write_report(con, tmp_path_factory.mktemp("report") / "report.html")
    finally:
        con.close()


@pytest.fixture(scope="module")
def page(report: Path) -> Iterator[Page]:
    binary = chromium()
    if binary is None:
        pytest.fail("the report test needs chromium (apt-get install -y chromium; .ci/run installs it)")
    opened = Page(binary)
    try:
        opened.open(report.as_uri())
        opened.evaluate("new Promise(r => setTimeout(r, 500))")
        yield opened
    finally:
        opened.close()


def test_the_report_renders_offline_without_errors(page: Page, tmp_path: Path) -> None:
    assert page.errors == []
    assert [u for u in page.requests if not u.startswith(("file:", "data:", "about:"))] == []
    charts = page.evaluate("document.querySelectorAll('.js-plotly-plot .main-svg').length")
    assert charts >= 5  # sankey, funnel, journey map, ideal bars: each draws at least one svg
    assert page.evaluate("document.querySelectorAll('.js-plotly-plot').length") == 4
    sankey_links = page.evaluate("document.querySelectorAll('#flow .sankey-link').length")
    assert sankey_links >= 6
    shot = page.screenshot(tmp_path / "report.png")
    assert shot.stat().st_size > 50_000


def test_key_numbers_on_the_page_equal_the_projection(page: Page, clinic: duckdb.DuckDBPyConnection) -> None:
    import json

    shown = {key: (value, text) for key, value, text in json.loads(page.evaluate(METRICS))}
    for key, expected in expected_numbers(clinic).items():
        value, text = shown[key]
        assert float(value) == pytest.approx(expected, abs=1e-4, rel=1e-4), key
        assert _shown(text.split()[0]) == pytest.approx(expected, rel=2e-3, abs=6e-4), (key, text)
    deviating = clinic.execute("SELECT count(*) FROM customers").fetchone()[0]
    assert 0 < int(shown["ideal_deviating"][0]) <= deviating
    violations = clinic.execute("SELECT count(*) FROM consent_violations").fetchone()[0]
    assert int(shown["consent_violations"][0]) == violations


def test_the_page_holds_aggregates_not_patients(report: Path, clinic: duckdb.DuckDBPyConnection) -> None:
    page = report.read_text()
    ids = [r[0] for r in clinic.execute("SELECT customer_id FROM customers").fetchall()]
    assert not [i for i in ids if i in page]
    assert "<script src" not in page and "cdn.plot.ly/plotly" not in page


def test_shared_tables_are_read_when_the_projection_has_them(clinic_snapshot: Path) -> None:
    con = _copy(clinic_snapshot, "")
    con.execute("CREATE TABLE stage_funnel AS SELECT * FROM (VALUES ('contact', 1, 900, 600, 300, 1.0, 1.0, "
                "900, 12, 3600.0), ('booking', 2, 600, 450, 150, 0.75, 0.5, 86400, 3, 7200.0)) t(stage, stage_order, "
                "entered, reached_next, dropped, conversion_from_previous, conversion_from_first, sla_seconds, "
                "missed_sla, median_seconds_to_next)")
    con.execute("CREATE TABLE failure_points AS SELECT * FROM (VALUES ('contact', 'booking', 'administrator', "
                "'Irina', 200, 120, 0.6, 0.33, 1.8, 0.001, true)) t(stage, next_stage, dimension, value, entered, "
                "failed, failure_rate, overall_rate, lift, p_value, significant)")
    con.execute("CREATE TABLE failure_reasons AS SELECT * FROM (VALUES ('contact', 'missed call without callback', "
                "77, 0.4)) t(stage, reason, failed, share)")
    con.execute("CREATE TABLE consent_violations AS SELECT * FROM (VALUES ('e1', 'P1', now(), 'sms', 'promotion', "
                "'no consent'), ('e2', 'P2', now(), 'sms', 'promotion', 'no consent')) t(event_id, customer_id, "
                "occurred_at, channel, purpose, reason)")
    con.execute("CREATE TABLE stage_changes AS SELECT * FROM (VALUES ('booking', 'first_visit', "
                "['branch', 'administrator'], DATE '2025-11-01', 120, 30, 0.25, DATE '2025-10-01', 110, 11, 0.1, "
                "15.0, 0.002, 0.004, true, true)) t(stage, next_stage, owners, month, entered, lost, loss_rate, "
                "previous_month, previous_entered, previous_lost, previous_loss_rate, change_points, p_value, "
                "q_value, significant, worse)")
    page = render_report(con)
    changed = page[page.index('id="changes"'):page.index('id="headline"')]
    assert "Nov 2025 vs Oct 2025" in changed and "25% of 120" in changed and "+15 points" in changed
    assert "worse: 230 patients, unlikely to be chance" in changed and "branches and administrators" in changed
    assert "changed by more than chance" not in changed
    assert "From the clinic&#x27;s stage funnel" in page or "From the clinic's stage funnel" in page
    assert "<td>Irina</td>" in page and "1.8×" in page and "missed call without callback" in page
    assert 'data-metric="consent_violations" data-value="2"' in page
    assert "Not available in this projection" not in page
    assert "<td>P1</td>" not in page and ">e1<" not in page  # counts only, no ids


def test_the_browser_check_sees_errors_and_requests(tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><img src='http://127.0.0.1:9/x.png'>"
                      "<script>console.error('boom'); undefinedFunction();</script></body></html>")
    binary = chromium()
    assert binary is not None
    page = Page(binary)
    try:
        page.open(broken.as_uri())
        assert any("boom" in e for e in page.errors)
        assert any("undefinedFunction" in e for e in page.errors)
        assert "http://127.0.0.1:9/x.png" in page.requests
    finally:
        page.close()


def test_the_computed_funnel_agrees_with_the_headline(clinic_snapshot: Path) -> None:
    """A projection without ``stage_funnel`` (older than the funnels): computed here."""
    from journey.maps.clinic import funnel, headline

    clinic = _copy(clinic_snapshot, "")
    rows, from_contract = funnel(clinic)
    assert not from_contract
    entered = [r.entered for r in rows]
    assert entered == sorted(entered, reverse=True)  # a customer counts at every stage up to the furthest
    by_stage = {r.stage: r for r in rows}
    assert by_stage["first_visit"].entered == headline(clinic).new_patients
    assert all(r.dropped == r.entered - r.reached_next >= 0 for r in rows)
    assert rows[0].entered == clinic.execute(
        "SELECT count(DISTINCT customer_id) FROM touchpoints WHERE stage IS NOT NULL AND "
        "customer_id NOT LIKE 'ambiguous:%'").fetchone()[0]


def test_the_projections_stage_funnel_is_shown_as_it_is(clinic: duckdb.DuckDBPyConnection) -> None:
    from journey.maps.clinic import funnel

    rows, from_contract = funnel(clinic)
    assert from_contract
    assert [(r.stage, r.entered, r.reached_next) for r in rows] == clinic.execute(
        "SELECT stage, entered, reached_next FROM stage_funnel ORDER BY stage_order").fetchall()


def _copy(snapshot: Path, touches: str, customers: str = "") -> duckdb.DuckDBPyConnection:
    """An in-memory projection made of the clinic's tables, cut by the SQL tails given."""
    con = duckdb.connect()
    con.execute("ATTACH ? AS clinic (READ_ONLY)", [str(snapshot)])
    con.execute(f"CREATE TABLE touchpoints AS SELECT * FROM clinic.touchpoints {touches}")
    con.execute(f"CREATE TABLE customers AS SELECT * FROM clinic.customers {customers}")
    return con


def test_without_ad_spend_the_cost_is_not_known(clinic_snapshot: Path) -> None:
    page = render_report(_copy(clinic_snapshot, "WHERE type <> 'ad_spend'"))
    cell = re.search(r'data-metric="cost_per_new_patient" data-value="([^"]*)">([^<]*)<', page)
    assert cell is not None and cell.groups() == ("", "not known")
    assert "no ad spend recorded" in page


def test_an_empty_projection_still_renders(clinic_snapshot: Path) -> None:
    page = render_report(_copy(clinic_snapshot, "LIMIT 0", "LIMIT 0"))
    assert 'data-metric="new_patients" data-value="0">0<' in page and "No touches yet" in page


def test_the_base_section_shows_what_the_commands_compute(clinic_snapshot: Path) -> None:
    """Retention, lifecycle, worklist rates and the recall uplift in the report are the
    figures of `journey.services.report.base_section` (the commands' use cases)."""
    import duckdb

    from journey.services.report import base_section

    con = duckdb.connect(str(clinic_snapshot), read_only=True)
    try:
        base = base_section(con)
        page = render_report(con, base=base)
    finally:
        con.close()
    assert base is not None and base["retention"]["period"] == "month" and len(base["lifecycle"]["periods"]) == 12
    assert 'id="base"' in page and "Recall outreach, measured" in page
    for rate in base["tasks"]:
        assert f"<td>{rate['owner']}</td>" in page
    assert "Not computed for this report." in render_report(duckdb.connect(str(clinic_snapshot), read_only=True))
